//! RecordBatch v2 (magic 2): parsing and validating the unit Spindle stores and serves.
//!
//! Pure code, no I/O; runs on whichever core owns the partition. The layout (big-endian):
//!
//! ```text
//! base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 | crc u32 |
//! attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 |
//! producer_id i64 | producer_epoch i16 | base_sequence i32 | records_count i32 | records
//! ```
//!
//! `batch_length` counts the bytes after itself; the CRC-32C covers `attributes` to the end,
//! which is why the broker may rewrite `base_offset` and `partition_leader_epoch` in place
//! without recomputing it.

use crate::record_validation::RecordTimestamps;

mod build;
pub use build::{
    NullableRecord, TimedRecord, build_batch, build_batch_of, build_batch_with_timestamps,
};

/// Bytes of the fixed header, up to and including `records_count`.
pub const RECORD_BATCH_HEADER_BYTES: usize = 61;
/// `base_offset` + `batch_length`: the prefix not counted by `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The smallest record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each as varints.
pub const RECORD_BYTES_MIN: usize = 7;
/// The only batch format Kafka 4.x accepts from producers.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_POS: usize = 0;
const BATCH_LENGTH_POS: usize = 8;
const PARTITION_LEADER_EPOCH_POS: usize = 12;
const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
pub(crate) const ATTRIBUTES_POS: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const BASE_TIMESTAMP_POS: usize = 27;
const MAX_TIMESTAMP_POS: usize = 35;
const PRODUCER_ID_POS: usize = 43;
const PRODUCER_EPOCH_POS: usize = 51;
const BASE_SEQUENCE_POS: usize = 53;
pub(crate) const RECORDS_COUNT_POS: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: the batch's records take `max_timestamp` (LogAppendTime), not their
/// own (CreateTime).
const LOG_APPEND_TIME_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;

/// Why a batch was refused. Each maps to a Kafka error code in [`super::ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or `batch_length` disagrees with the bytes present.
    BadLength { batch_length: i32, available: usize },
    /// Not magic 2.
    BadMagic(i8),
    /// The stored CRC-32C does not match the bytes.
    BadCrc { stored: u32, computed: u32 },
    /// `records_count` is negative, zero, larger than the bytes could hold, or disagrees
    /// with `last_offset_delta`.
    BadRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// The records section does not decompress (corrupt stream, unknown codec, a bomb).
    BadCompression(String),
    /// The records do not match the header: a record's framing, or their number.
    BadRecord(String),
    /// A record's offset delta is not its position in the batch.
    BadOffsetDelta { index: i32, offset_delta: i64 },
    /// A record without a key, sent to a compacted topic (which keeps records by key).
    KeylessRecord { offset_delta: i64 },
    /// A record's timestamp lies outside what the topic's `message.timestamp.before.max.ms`
    /// and `message.timestamp.after.max.ms` allow now.
    TimestampOutOfRange {
        index: i32,
        timestamp: i64,
        low: i64,
        high: i64,
    },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::BadLength {
                batch_length,
                available,
            } => {
                write!(
                    f,
                    "batch_length {batch_length} does not fit the {available} bytes given"
                )
            }
            BatchError::BadMagic(magic) => write!(f, "unsupported magic {magic} (only 2)"),
            BatchError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            BatchError::BadRecordCount {
                records_count,
                last_offset_delta,
            } => write!(
                f,
                "records_count {records_count} inconsistent with last_offset_delta {last_offset_delta}"
            ),
            BatchError::BadCompression(reason) => write!(f, "records do not decompress: {reason}"),
            BatchError::BadRecord(reason) => write!(f, "malformed records: {reason}"),
            BatchError::BadOffsetDelta {
                index,
                offset_delta,
            } => write!(f, "record {index} has offset delta {offset_delta}"),
            BatchError::KeylessRecord { offset_delta } => write!(
                f,
                "a compacted topic cannot accept a record without a key (offset delta {offset_delta})"
            ),
            BatchError::TimestampOutOfRange {
                index,
                timestamp,
                low,
                high,
            } => write!(
                f,
                "timestamp {timestamp} of record {index} is out of range: the topic takes [{low}, {high}] now"
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// The decoded fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i16(bytes: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([bytes[pos], bytes[pos + 1]])
}
fn be_i32(bytes: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"))
}
fn be_i64(bytes: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(bytes[pos..pos + 8].try_into().expect("8 bytes"))
}

impl RecordBatchHeader {
    /// Decodes the fixed header without checking anything but that it is present.
    pub fn decode(bytes: &[u8]) -> Result<RecordBatchHeader, BatchError> {
        if bytes.len() < RECORD_BATCH_HEADER_BYTES {
            let batch_length = if bytes.len() >= LOG_OVERHEAD_BYTES {
                be_i32(bytes, BATCH_LENGTH_POS)
            } else {
                -1
            };
            return Err(BatchError::BadLength {
                batch_length,
                available: bytes.len(),
            });
        }
        Ok(RecordBatchHeader {
            base_offset: be_i64(bytes, BASE_OFFSET_POS),
            batch_length: be_i32(bytes, BATCH_LENGTH_POS),
            partition_leader_epoch: be_i32(bytes, PARTITION_LEADER_EPOCH_POS),
            magic: bytes[MAGIC_POS] as i8,
            crc: u32::from_be_bytes(bytes[CRC_POS..CRC_POS + 4].try_into().expect("4 bytes")),
            attributes: be_i16(bytes, ATTRIBUTES_POS),
            last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA_POS),
            base_timestamp: be_i64(bytes, BASE_TIMESTAMP_POS),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP_POS),
            producer_id: be_i64(bytes, PRODUCER_ID_POS),
            producer_epoch: be_i16(bytes, PRODUCER_EPOCH_POS),
            base_sequence: be_i32(bytes, BASE_SEQUENCE_POS),
            records_count: be_i32(bytes, RECORDS_COUNT_POS),
        })
    }

    /// Total bytes of the batch on the wire and on disk.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Next offset after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Whether every record's timestamp is the batch's `max_timestamp`, the time the
    /// broker appended it (a topic with `message.timestamp.type=LogAppendTime`).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & LOG_APPEND_TIME_FLAG != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }
}

/// CRC-32C over `attributes`..end, as stored in the header.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c(&batch[ATTRIBUTES_POS..])
}

/// CRC-32C (Castagnoli, Kafka's batch checksum) of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32/ISCSI is CRC-32C; the 32-bit result is widened to u64 by the API.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// The size of the first batch of a record set (a Produce request's records, or a log's
/// bytes), read from its length field alone: the batch's contents are checked when it is
/// validated. `BadLength` when the bytes end before the batch does or the length is too
/// small for a batch header.
pub fn next_batch_bytes(records: &[u8]) -> Result<usize, BatchError> {
    let bad = |batch_length| BatchError::BadLength {
        batch_length,
        available: records.len(),
    };
    if records.len() < LOG_OVERHEAD_BYTES {
        return Err(bad(-1));
    }
    let batch_length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    usize::try_from(batch_length)
        .ok()
        .map(|length| length + LOG_OVERHEAD_BYTES)
        .filter(|&size| size >= RECORD_BATCH_HEADER_BYTES && size <= records.len())
        .ok_or(bad(batch_length))
}

/// The byte ranges of the batches in a record set, in order, by [`next_batch_bytes`]; after
/// the first error it yields nothing more.
pub fn split_batches(records: &[u8]) -> SplitBatches<'_> {
    SplitBatches {
        records,
        position: 0,
        failed: false,
    }
}

/// See [`split_batches`].
pub struct SplitBatches<'a> {
    records: &'a [u8],
    position: usize,
    failed: bool,
}

impl Iterator for SplitBatches<'_> {
    type Item = Result<std::ops::Range<usize>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position == self.records.len() {
            return None;
        }
        match next_batch_bytes(&self.records[self.position..]) {
            Ok(size) => {
                let range = self.position..self.position + size;
                self.position = range.end;
                Some(Ok(range))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}

/// Checks that `batch` is exactly one well-formed RecordBatch v2 as a producer sends it:
/// length, magic, CRC, record count, and every record against the header (decompressed
/// if need be, see `record_validation`). `base_offset` is not checked (the broker assigns
/// it).
pub fn validate_produced(batch: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    validate_produced_with(batch, true)
}

/// [`validate_produced`], decompressing a compressed batch's records to check them only
/// when `check_compressed_records` (a topic may trade that check for CPU; see
/// `validate.compressed.records`). Uncompressed records are always checked.
pub fn validate_produced_with(
    batch: &[u8],
    check_compressed_records: bool,
) -> Result<RecordBatchHeader, BatchError> {
    validate_produced_timestamps(batch, check_compressed_records).map(|(header, _)| header)
}

/// [`validate_produced_with`], also returning the records' timestamp range: as the walk
/// found it, or as the header says where the records were not walked.
pub fn validate_produced_timestamps(
    batch: &[u8],
    check_compressed_records: bool,
) -> Result<(RecordBatchHeader, Option<RecordTimestamps>), BatchError> {
    let header = validate_framing(batch)?;
    if batch.len() != header.size_bytes() {
        return Err(BatchError::BadLength {
            batch_length: header.batch_length,
            available: batch.len(),
        });
    }
    let bad_count = BatchError::BadRecordCount {
        records_count: header.records_count,
        last_offset_delta: header.last_offset_delta,
    };
    // A producer's batch has consecutive offsets: deltas 0..count-1. An empty batch has no
    // offsets to assign.
    if header.records_count <= 0 || header.last_offset_delta != header.records_count - 1 {
        return Err(bad_count);
    }
    // Uncompressed records are at least RECORD_BYTES_MIN each; this catches a count that
    // would make a reader walk past the batch. Compressed batches cannot be bounded this way.
    let records_bytes = batch.len() - RECORD_BATCH_HEADER_BYTES;
    if header.compression() == 0 && header.records_count as usize > records_bytes / RECORD_BYTES_MIN
    {
        return Err(bad_count);
    }
    let timestamps = if header.compression() == 0 || check_compressed_records {
        super::record_validation::validate_records(batch, &header)?
    } else {
        RecordTimestamps::from_header(&header)
    };
    Ok((header, timestamps))
}

/// Checks the framing of the batch at the start of `bytes` (which may hold more after it):
/// the header is present, `batch_length` fits, magic is 2 and the CRC matches. Used when
/// reading back from disk, where a torn or flipped byte must be caught.
pub fn validate_framing(bytes: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    let header = RecordBatchHeader::decode(bytes)?;
    let length_min = (RECORD_BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if header.batch_length < length_min || header.size_bytes() > bytes.len() {
        return Err(BatchError::BadLength {
            batch_length: header.batch_length,
            available: bytes.len(),
        });
    }
    if header.magic != MAGIC_V2 {
        return Err(BatchError::BadMagic(header.magic));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::BadRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    let computed = compute_crc(&bytes[..header.size_bytes()]);
    if computed != header.crc {
        return Err(BatchError::BadCrc {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Writes the broker-assigned `base_offset` into a batch in place (the CRC stays valid).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps a whole batch with the broker's append time, as Kafka does for a topic with
/// `message.timestamp.type=LogAppendTime`: the timestamp-type bit set, `max_timestamp` =
/// `now_ms`, and the CRC (which covers both) recomputed.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_POS) | LOG_APPEND_TIME_FLAG;
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Writes the leader epoch into a batch in place (the CRC stays valid).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_POS..PARTITION_LEADER_EPOCH_POS + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Reads a zig-zag varint (Kafka's `varint`/`varlong`); returns the value and bytes used.
pub fn read_varlong(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, index + 1));
        }
    }
    None
}

/// Appends a zig-zag varint.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// For an uncompressed batch, the offset and timestamp of each record, in order. Returns
/// `None` for a compressed batch or a malformed record section (callers then fall back to
/// batch granularity). Used by timestamp lookups, which must answer with the first record
/// whose timestamp reaches the target.
pub fn record_timestamps(batch: &[u8]) -> Option<Vec<(i64, i64)>> {
    let header = RecordBatchHeader::decode(batch).ok()?;
    if header.compression() != 0 || batch.len() < header.size_bytes() {
        return None;
    }
    let mut out = Vec::with_capacity(header.records_count.max(0) as usize);
    let mut pos = RECORD_BATCH_HEADER_BYTES;
    let end = header.size_bytes();
    // LogAppendTime: every record carries the batch's append time.
    let append_time = header.is_log_append_time().then_some(header.max_timestamp);
    for _ in 0..header.records_count {
        let (length, used) = read_varlong(batch.get(pos..end)?)?;
        let body_start = pos + used;
        let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
        let body = batch.get(body_start..body_end.min(end))?;
        // attributes i8, then timestampDelta varlong, offsetDelta varint.
        let (timestamp_delta, used_ts) = read_varlong(body.get(1..)?)?;
        let (offset_delta, _) = read_varlong(body.get(1 + used_ts..)?)?;
        out.push((
            header.base_offset + offset_delta,
            append_time.unwrap_or(header.base_timestamp + timestamp_delta),
        ));
        pos = body_end;
    }
    Some(out)
}

/// A record's key and value, `None` when null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// The key and value of every record of an uncompressed batch (`None` for a null key or
/// value); `None` if the batch is compressed or its records do not parse.
pub fn record_keys_and_values(batch: &[u8]) -> Option<Vec<KeyValue<'_>>> {
    let mut out = Vec::new();
    for_each_record(batch, |_, key, value| out.push((key, value)))?;
    Some(out)
}

/// Calls `record(index, key, value)` for every record of an uncompressed batch, in order,
/// without allocating; `None` (after calling it for the records before) if the batch is
/// compressed or a record does not parse.
pub fn for_each_record<'a>(
    batch: &'a [u8],
    mut record: impl FnMut(usize, Option<&'a [u8]>, Option<&'a [u8]>),
) -> Option<()> {
    let header = RecordBatchHeader::decode(batch).ok()?;
    if header.compression() != 0 || batch.len() < header.size_bytes() {
        return None;
    }
    let end = header.size_bytes();
    let mut pos = RECORD_BATCH_HEADER_BYTES;
    for index in 0..header.records_count.max(0) as usize {
        let (length, used) = read_varlong(batch.get(pos..end)?)?;
        let body_start = pos + used;
        let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
        let body = batch.get(body_start..body_end)?;
        // attributes i8, timestampDelta varlong, offsetDelta varint, then key and value.
        let mut at = 1;
        for _ in 0..2 {
            let (_, used) = read_varlong(body.get(at..)?)?;
            at += used;
        }
        let mut field = || -> Option<Option<&'a [u8]>> {
            let (length, used) = read_varlong(body.get(at..)?)?;
            at += used;
            if length < 0 {
                return Some(None);
            }
            let bytes = body.get(at..at.checked_add(usize::try_from(length).ok()?)?)?;
            at += bytes.len();
            Some(Some(bytes))
        };
        let key = field()?;
        let value = field()?;
        record(index, key, value);
        pos = body_end;
    }
    Some(())
}

/// Writes `batch_length` and the CRC of a whole batch whose other fields are final.
pub(crate) fn seal_batch(batch: &mut [u8]) {
    let batch_length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&batch_length.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_append_time_stamps_the_batch_and_keeps_it_valid() {
        let mut batch = build_batch(1_000, &[(None, b"a"), (None, b"b")]);
        assert!(!validate_framing(&batch).unwrap().is_log_append_time());
        set_log_append_time(&mut batch, 77_000);
        let header = validate_framing(&batch).expect("the CRC was recomputed");
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 77_000);
        assert_eq!(
            record_timestamps(&batch),
            Some(vec![(0, 77_000), (1, 77_000)]),
            "every record takes the append time"
        );
        assert_eq!(validate_produced(&batch).map(|_| ()), Ok(()));
    }

    #[test]
    fn a_record_set_splits_into_its_batches_and_stops_at_a_cut_one() {
        let first = build_batch(1, &[(None, b"a")]);
        let second = build_batch(2, &[(None, b"bb"), (Some(b"k"), b"c")]);
        let mut records = first.clone();
        records.extend_from_slice(&second);
        let ranges: Vec<_> = split_batches(&records).collect();
        assert_eq!(
            ranges,
            vec![Ok(0..first.len()), Ok(first.len()..records.len())]
        );
        let cut = &records[..records.len() - 1];
        let ranges: Vec<_> = split_batches(cut).collect();
        assert_eq!(ranges.len(), 2);
        assert!(matches!(ranges[1], Err(BatchError::BadLength { .. })));
        assert!(split_batches(&[]).next().is_none());
        assert!(matches!(
            split_batches(&[0; 11]).next(),
            Some(Err(BatchError::BadLength {
                batch_length: -1,
                available: 11
            }))
        ));
    }

    #[test]
    fn crc32c_matches_the_reference_at_every_length_and_alignment() {
        // RFC 3720's check value, and the reference (crc32c crate) across the lengths where
        // SIMD implementations switch paths (tails, 64/128/256-byte blocks, large folds),
        // at every alignment within a cache line.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b""), 0);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..(1 << 20) + 4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let lengths = (0..=1024).chain([4095, 4096, 4097, 16_205, 65_536, 1_035_197, 1 << 20]);
        for len in lengths {
            for align in [0, 1, 3, 7, 8, 15, 16, 31, 63] {
                let slice = &bytes[align..align + len];
                assert_eq!(
                    crc32c(slice),
                    crc32c::crc32c(slice),
                    "len {len} align {align}"
                );
            }
        }
    }

    fn sample() -> Vec<u8> {
        build_batch(
            1_000,
            &[
                (Some(b"k1"), b"v1"),
                (None, b"value-two"),
                (Some(b"k3"), b""),
            ],
        )
    }

    #[test]
    fn built_batch_validates_and_decodes() {
        let batch = sample();
        let header = validate_produced(&batch).expect("valid");
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_002);
        assert_eq!(header.size_bytes(), batch.len());
        assert_eq!(header.magic, MAGIC_V2);
    }

    #[test]
    fn base_offset_and_epoch_rewrite_keep_crc_valid() {
        let mut batch = sample();
        set_base_offset(&mut batch, 123_456_789);
        set_partition_leader_epoch(&mut batch, 7);
        let header = validate_framing(&batch).expect("still valid");
        assert_eq!(header.base_offset, 123_456_789);
        assert_eq!(header.partition_leader_epoch, 7);
        assert_eq!(header.last_offset(), 123_456_791);
    }

    #[test]
    fn every_flipped_bit_after_the_crc_field_is_caught() {
        let batch = sample();
        for byte in ATTRIBUTES_POS..batch.len() {
            for bit in 0..8 {
                let mut corrupt = batch.clone();
                corrupt[byte] ^= 1 << bit;
                assert!(
                    validate_produced(&corrupt).is_err(),
                    "byte {byte} bit {bit} undetected"
                );
            }
        }
    }

    #[test]
    fn bad_magic_length_and_count_are_typed() {
        let mut batch = sample();
        batch[MAGIC_POS] = 1;
        assert_eq!(validate_produced(&batch), Err(BatchError::BadMagic(1)));

        let batch = sample();
        assert!(matches!(
            validate_produced(&batch[..batch.len() - 1]),
            Err(BatchError::BadLength { .. })
        ));
        let mut longer = batch.clone();
        longer.push(0);
        assert!(matches!(
            validate_produced(&longer),
            Err(BatchError::BadLength { .. })
        ));
        assert!(matches!(
            validate_produced(&batch[..20]),
            Err(BatchError::BadLength { .. })
        ));

        // A count that claims more records than the bytes can hold, with a valid CRC.
        let mut batch = sample();
        batch[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&1_000i32.to_be_bytes());
        batch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4]
            .copy_from_slice(&999i32.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_produced(&batch),
            Err(BatchError::BadRecordCount { .. })
        ));

        // last_offset_delta disagreeing with records_count.
        let mut batch = sample();
        batch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4]
            .copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_produced(&batch),
            Err(BatchError::BadRecordCount { .. })
        ));
    }

    #[test]
    fn record_timestamps_walks_every_record() {
        let batch = build_batch_with_timestamps(&[
            (50, None, b"a"),
            (10, None, b"bb"),
            (70, Some(b"key"), b"ccc"),
        ]);
        let mut batch = batch;
        set_base_offset(&mut batch, 100);
        assert_eq!(
            record_timestamps(&batch),
            Some(vec![(100, 50), (101, 10), (102, 70)])
        );
    }

    #[test]
    fn varlong_round_trips_extremes() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            assert_eq!(read_varlong(&out), Some((value, out.len())));
        }
        assert_eq!(read_varlong(&[0x80; 11]), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic stand-in for a fuzz run: random prefixes and mutations of a
        // valid batch must produce Ok or a typed error, never a panic.
        let valid = sample();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = valid.clone();
            let cut = (state as usize) % (bytes.len() + 1);
            bytes.truncate(cut);
            if !bytes.is_empty() {
                let index = (state >> 20) as usize % bytes.len();
                bytes[index] = (state >> 40) as u8;
            }
            let _ = validate_produced(&bytes);
            let _ = validate_framing(&bytes);
            let _ = record_timestamps(&bytes);
        }
    }
}
