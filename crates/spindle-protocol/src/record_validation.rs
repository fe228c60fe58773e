//! What Kafka's LogValidator checks inside a produced RecordBatch v2, beyond its header and
//! CRC: that the records section (decompressed, for every codec) holds exactly
//! `records_count` well-framed records whose offset deltas run 0, 1, 2, ... A batch that
//! passes the CRC can still lie: a count of 1,000,000 over 20 records would move the high
//! watermark by a million, 20 records under a count of 3 would hand the same offsets out
//! twice, and a corrupt compressed payload would be stored and then stop every consumer
//! that tries to decompress it.
//!
//! Pure; runs on the core that owns the partition, in the produce path, before the append.

use super::compression::{DECOMPRESSED_RECORDS_BYTES_MAX, decompress_records};
use super::record_batch::{BatchError, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};

/// The earliest and the latest timestamp among a batch's records, each with the index of
/// a record that carries it. Records without a timestamp (-1) are left out, as Kafka's
/// timestamp checks leave them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTimestamps {
    /// `(timestamp ms, record index)`.
    pub min: (i64, i32),
    pub max: (i64, i32),
}

impl RecordTimestamps {
    /// What the header alone says, for a batch whose records were not walked: the first
    /// record's timestamp and the batch's maximum.
    pub fn from_header(header: &RecordBatchHeader) -> Option<RecordTimestamps> {
        let last = header.records_count.saturating_sub(1).max(0);
        match (header.base_timestamp, header.max_timestamp) {
            (NO_TIMESTAMP, NO_TIMESTAMP) => None,
            (NO_TIMESTAMP, max) => Some(RecordTimestamps {
                min: (max, last),
                max: (max, last),
            }),
            (base, max) => Some(RecordTimestamps {
                min: (base.min(max), 0),
                max: (max.max(base), last),
            }),
        }
    }

    fn add(this: &mut Option<RecordTimestamps>, timestamp: i64, index: i32) {
        if timestamp == NO_TIMESTAMP {
            return;
        }
        match this {
            None => {
                *this = Some(RecordTimestamps {
                    min: (timestamp, index),
                    max: (timestamp, index),
                })
            }
            Some(range) => {
                if timestamp < range.min.0 {
                    range.min = (timestamp, index);
                }
                if timestamp > range.max.0 {
                    range.max = (timestamp, index);
                }
            }
        }
    }
}

/// Kafka's `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms` for a
/// CreateTime topic: every record's timestamp must lie within
/// `[now - before_max_ms, now + after_max_ms]`; the first record found outside refuses the
/// batch (INVALID_TIMESTAMP).
pub fn check_timestamp_bounds(
    timestamps: Option<RecordTimestamps>,
    now_ms: i64,
    before_max_ms: i64,
    after_max_ms: i64,
) -> Result<(), BatchError> {
    let Some(range) = timestamps else {
        return Ok(());
    };
    let low = now_ms.saturating_sub(before_max_ms);
    let high = now_ms.saturating_add(after_max_ms);
    for (timestamp, index) in [range.min, range.max] {
        if timestamp < low || timestamp > high {
            return Err(BatchError::TimestampOutOfRange {
                index,
                timestamp,
                low,
                high,
            });
        }
    }
    Ok(())
}

/// A record's timestamp when it has none.
const NO_TIMESTAMP: i64 = -1;

/// Checks every record of `batch` (whose header is `header`, already validated) against
/// the header: decompresses its records section if needed, then walks it. Returns the
/// records' timestamp range (`None`: no record has a timestamp).
pub fn validate_records(
    batch: &[u8],
    header: &RecordBatchHeader,
) -> Result<Option<RecordTimestamps>, BatchError> {
    let records = &batch[RECORD_BATCH_HEADER_BYTES..header.size_bytes()];
    let codec = header.compression() as u16;
    if codec == 0 {
        return walk_records(records, header);
    }
    let plain = decompress_records(codec, records, DECOMPRESSED_RECORDS_BYTES_MAX)
        .map_err(BatchError::BadCompression)?;
    walk_records(&plain, header)
}

/// Walks the header's `records_count` records, which must fill `records` exactly.
fn walk_records(
    records: &[u8],
    header: &RecordBatchHeader,
) -> Result<Option<RecordTimestamps>, BatchError> {
    let count = header.records_count;
    let mut timestamps = None;
    let mut cursor = Cursor { rest: records };
    for index in 0..count {
        let record = |reason: &str| BatchError::BadRecord(format!("record {index}: {reason}"));
        let length = cursor
            .varint()
            .ok_or_else(|| record("a truncated length"))?;
        let length = usize::try_from(length).map_err(|_| record("a negative length"))?;
        let body = cursor
            .take(length)
            .ok_or_else(|| record("longer than the batch"))?;
        let (timestamp_delta, offset_delta) = walk_record(body).map_err(record)?;
        if offset_delta != i64::from(index) {
            return Err(BatchError::BadOffsetDelta {
                index,
                offset_delta,
            });
        }
        if header.base_timestamp != NO_TIMESTAMP {
            let timestamp = header.base_timestamp.saturating_add(timestamp_delta);
            RecordTimestamps::add(&mut timestamps, timestamp, index);
        }
    }
    if !cursor.rest.is_empty() {
        return Err(BatchError::BadRecord(format!(
            "{} bytes after the {count} records the header counts",
            cursor.rest.len()
        )));
    }
    Ok(timestamps)
}

/// Walks one record's body (after its length), which it must fill exactly; its timestamp
/// delta and offset delta.
fn walk_record(body: &[u8]) -> Result<(i64, i64), &'static str> {
    let mut cursor = Cursor { rest: body };
    cursor.take(1).ok_or("no attributes")?;
    let timestamp_delta = cursor.varint().ok_or("a truncated timestamp delta")?;
    let offset_delta = cursor.varint().ok_or("a truncated offset delta")?;
    // Key and value: -1 is null.
    for _ in 0..2 {
        cursor.nullable_bytes().ok_or("a bad key or value")?;
    }
    let headers = cursor.varint().ok_or("a truncated header count")?;
    if headers < 0 {
        return Err("a negative header count");
    }
    for _ in 0..headers {
        let key = cursor.nullable_bytes().ok_or("a bad header key")?;
        if key.is_none() {
            return Err("a null header key");
        }
        cursor.nullable_bytes().ok_or("a bad header value")?;
    }
    if !cursor.rest.is_empty() {
        return Err("bytes after its last field");
    }
    Ok((timestamp_delta, offset_delta))
}

struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, bytes: usize) -> Option<&'a [u8]> {
        if bytes > self.rest.len() {
            return None;
        }
        let (taken, rest) = self.rest.split_at(bytes);
        self.rest = rest;
        Some(taken)
    }

    /// A zig-zag varint of at most 10 bytes (Kafka's varint and varlong).
    fn varint(&mut self) -> Option<i64> {
        let mut raw = 0u64;
        for index in 0..10 {
            let byte = *self.rest.get(index)?;
            raw |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.rest = &self.rest[index + 1..];
                return Some(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        None
    }

    /// A varint length and that many bytes; `Some(None)` for null (-1).
    fn nullable_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.varint()? {
            -1 => Some(None),
            length if length < 0 => None,
            length => self.take(usize::try_from(length).ok()?).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::{Codec, compress_batch};
    use crate::record_batch::{
        ATTRIBUTES_POS, build_batch, seal_batch, validate_produced, write_varlong,
    };
    use std::io::Write;

    fn records(count: usize) -> Vec<u8> {
        let values: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("value {i} value value value").into_bytes())
            .collect();
        let records: Vec<(Option<&[u8]>, &[u8])> = values
            .iter()
            .map(|v| (Some(&b"k"[..]), v.as_slice()))
            .collect();
        build_batch(1_700_000_000_000, &records)
    }

    /// `batch` with its records section replaced by `codec`'s compression of it, as a
    /// Kafka client writes it.
    fn compressed_with(batch: &[u8], codec: u16) -> Vec<u8> {
        let section = &batch[RECORD_BATCH_HEADER_BYTES..];
        let compressed = match codec {
            1 => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(section).unwrap();
                encoder.finish().unwrap()
            }
            2 => {
                // The Java client's xerial framing: header, then length-prefixed blocks.
                let mut out = b"\x82SNAPPY\0".to_vec();
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                for chunk in section.chunks(100) {
                    let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
                    out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
                out
            }
            3 => return compress_batch(batch, Codec::Lz4).unwrap(),
            4 => return compress_batch(batch, Codec::Zstd).unwrap(),
            _ => unreachable!(),
        };
        let mut out = batch[..RECORD_BATCH_HEADER_BYTES].to_vec();
        out.extend_from_slice(&compressed);
        let attributes = i16::from_be_bytes([out[ATTRIBUTES_POS], out[ATTRIBUTES_POS + 1]]);
        out[ATTRIBUTES_POS..ATTRIBUTES_POS + 2]
            .copy_from_slice(&((attributes & !7) | codec as i16).to_be_bytes());
        seal_batch(&mut out);
        out
    }

    /// `batch` with `records_count` (and the last offset delta, which must agree with it)
    /// set to `count`, resealed so its CRC holds.
    fn with_count(batch: &[u8], count: i32) -> Vec<u8> {
        let mut out = batch.to_vec();
        out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        out[57..61].copy_from_slice(&count.to_be_bytes());
        seal_batch(&mut out);
        out
    }

    #[test]
    fn the_walk_finds_the_records_timestamp_range_and_the_bounds_refuse_outside_it() {
        use crate::record_batch::{build_batch_with_timestamps, validate_produced_timestamps};
        let plain = build_batch_with_timestamps(&[
            (5_000, Some(&b"a"[..]), &b"1"[..]),
            (9_000, Some(&b"b"[..]), &b"2"[..]),
            (1_000, Some(&b"c"[..]), &b"3"[..]),
        ]);
        let walked = Some(RecordTimestamps {
            min: (1_000, 2),
            max: (9_000, 1),
        });
        for codec in 0..=4u16 {
            let batch = if codec == 0 {
                plain.clone()
            } else {
                compressed_with(&plain, codec)
            };
            let (_, found) = validate_produced_timestamps(&batch, true).unwrap();
            assert_eq!(found, walked, "codec {codec}");
        }
        // Records not walked: the header's first and maximum timestamps stand for them.
        let (header, from_header) =
            validate_produced_timestamps(&compressed_with(&plain, 1), false).unwrap();
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(
            from_header,
            Some(RecordTimestamps {
                min: (1_000, 0),
                max: (9_000, 2),
            })
        );

        assert_eq!(check_timestamp_bounds(walked, 10_000, 9_000, 0), Ok(()));
        assert_eq!(
            check_timestamp_bounds(walked, 10_000, 5_000, i64::MAX),
            Err(BatchError::TimestampOutOfRange {
                index: 2,
                timestamp: 1_000,
                low: 5_000,
                high: i64::MAX,
            }),
            "too old"
        );
        assert_eq!(
            check_timestamp_bounds(walked, 8_000, i64::MAX, 500),
            Err(BatchError::TimestampOutOfRange {
                index: 1,
                timestamp: 9_000,
                low: 8_000 - i64::MAX,
                high: 8_500,
            }),
            "too new"
        );
        assert_eq!(check_timestamp_bounds(None, 0, 0, 0), Ok(()));
    }

    #[test]
    fn records_without_a_timestamp_have_no_range() {
        use crate::record_batch::validate_produced_timestamps;
        let mut batch = records(3);
        // base_timestamp -1 (NO_TIMESTAMP), as a producer without timestamps sends.
        batch[27..35].copy_from_slice(&(-1i64).to_be_bytes());
        seal_batch(&mut batch);
        let header = RecordBatchHeader::decode(&batch).unwrap();
        assert_eq!(validate_produced_timestamps(&batch, true).unwrap().1, None);
        let mut both = header;
        both.max_timestamp = -1;
        assert_eq!(RecordTimestamps::from_header(&both), None);
    }

    #[test]
    fn valid_batches_pass_for_every_codec() {
        let plain = records(20);
        for codec in 0..=4u16 {
            let batch = if codec == 0 {
                plain.clone()
            } else {
                compressed_with(&plain, codec)
            };
            validate_produced(&batch).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
        }
    }

    #[test]
    fn a_count_that_disagrees_with_the_records_is_refused_for_every_codec() {
        let plain = records(20);
        for codec in 0..=4u16 {
            for count in [3, 19, 21, 1_000_000] {
                let lying = with_count(&plain, count);
                let batch = if codec == 0 {
                    lying
                } else {
                    compressed_with(&lying, codec)
                };
                let error = validate_produced(&batch).unwrap_err();
                assert!(
                    matches!(
                        error,
                        BatchError::BadRecord(_) | BatchError::BadRecordCount { .. }
                    ),
                    "codec {codec} count {count}: {error}"
                );
            }
        }
    }

    #[test]
    fn corrupt_compressed_payloads_are_refused() {
        let plain = records(50);
        for codec in 1..=4u16 {
            let mut batch = compressed_with(&plain, codec);
            // Flip bytes in the middle of the compressed stream, then fix the CRC as a
            // buggy client would have computed it.
            let middle = RECORD_BATCH_HEADER_BYTES + (batch.len() - RECORD_BATCH_HEADER_BYTES) / 2;
            for byte in &mut batch[middle..middle + 4] {
                *byte ^= 0x5a;
            }
            seal_batch(&mut batch);
            assert!(validate_produced(&batch).is_err(), "codec {codec}");
            // Truncated streams too.
            let mut short = compressed_with(&plain, codec);
            short.truncate(short.len() - 8);
            let length = (short.len() - 12) as i32;
            short[8..12].copy_from_slice(&length.to_be_bytes());
            seal_batch(&mut short);
            assert!(
                validate_produced(&short).is_err(),
                "codec {codec} truncated"
            );
        }
    }

    #[test]
    fn offset_deltas_must_run_from_zero() {
        // Two records whose offset deltas are 0 and 5.
        let mut section = Vec::new();
        for delta in [0i64, 5] {
            let mut body = vec![0u8];
            write_varlong(&mut body, 0);
            write_varlong(&mut body, delta);
            write_varlong(&mut body, -1);
            write_varlong(&mut body, 1);
            body.push(b'v');
            write_varlong(&mut body, 0);
            write_varlong(&mut section, body.len() as i64);
            section.extend_from_slice(&body);
        }
        let mut batch = records(2)[..RECORD_BATCH_HEADER_BYTES].to_vec();
        batch.extend_from_slice(&section);
        seal_batch(&mut batch);
        assert_eq!(
            validate_produced(&batch).unwrap_err(),
            BatchError::BadOffsetDelta {
                index: 1,
                offset_delta: 5
            }
        );
    }

    #[test]
    fn a_decompression_bomb_is_refused_without_inflating_it() {
        let zeros = vec![0u8; DECOMPRESSED_RECORDS_BYTES_MAX + 1024];
        let compressed = zstd::bulk::compress(&zeros, 3).unwrap();
        let error = decompress_records(4, &compressed, DECOMPRESSED_RECORDS_BYTES_MAX).unwrap_err();
        assert!(error.contains("more than"), "{error}");
    }
}
