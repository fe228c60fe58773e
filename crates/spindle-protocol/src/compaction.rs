//! The record-level half of log compaction, pure: each record of a stored batch with its
//! offset and key (decompressing the batch if need be), and the batch rebuilt with only
//! the records the cleaner keeps. The cleaner itself (which records, which segments, the
//! crash-safe swap) is the storage layer's (`storage::log::compact`).
//!
//! A rebuilt batch is Kafka's: its base offset, last offset delta, timestamps, producer
//! fields, leader epoch and codec stay as they were, so every kept record keeps its offset
//! and a reader sees the same batch boundaries, only with gaps between the offsets. The
//! kept records' bytes are copied unchanged (their deltas stay relative to the same base);
//! the count, the length and the CRC are rewritten, and the records recompressed with the
//! batch's own codec.

use crate::compression::{DECOMPRESSED_RECORDS_BYTES_MAX, compress_records, decompress_records};
use crate::record_batch::{
    ATTRIBUTES_POS, BatchError, RECORD_BATCH_HEADER_BYTES, RECORDS_COUNT_POS, RecordBatchHeader,
    read_varlong, seal_batch,
};

/// One record as the cleaner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedRecord<'a> {
    pub offset: i64,
    pub timestamp: i64,
    /// `None` for a record without a key (a compacted topic refuses those at produce;
    /// older data may hold some).
    pub key: Option<&'a [u8]>,
    /// A null value: a tombstone, deleting its key.
    pub is_tombstone: bool,
}

/// What [`retain_records`] made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record is kept: store the batch as it was.
    All,
    /// No record is kept: the batch goes.
    Nothing,
    /// Some are kept: this batch replaces it.
    Some(Vec<u8>),
}

/// Calls `visit` with every record of `batch` (a whole, framing-checked RecordBatch v2),
/// in offset order. An error names what does not parse.
pub fn for_each_keyed_record(
    batch: &[u8],
    mut visit: impl FnMut(&KeyedRecord<'_>),
) -> Result<(), String> {
    let (header, records) = plain_records(batch)?;
    walk_records(&header, &records, |_, record| visit(record))
}

/// Checks that every record of a produced `batch` has a key, as a compacted topic demands
/// (Kafka's INVALID_RECORD otherwise). The batch passed `validate_produced` already.
pub fn check_keys(batch: &[u8]) -> Result<(), BatchError> {
    let mut keyless = None;
    for_each_keyed_record(batch, |record| {
        if record.key.is_none() && keyless.is_none() {
            keyless = Some(record.offset);
        }
    })
    .map_err(BatchError::BadRecord)?;
    let base_offset = RecordBatchHeader::decode(batch)
        .map(|header| header.base_offset)
        .unwrap_or(0);
    match keyless {
        Some(offset) => Err(BatchError::KeylessRecord {
            offset_delta: offset - base_offset,
        }),
        None => Ok(()),
    }
}

/// `batch` with only the records `keep` answers true for (see the module header). Control
/// batches are the caller's to keep whole; this treats every batch alike.
pub fn retain_records(
    batch: &[u8],
    mut keep: impl FnMut(&KeyedRecord<'_>) -> bool,
) -> Result<Retained, String> {
    let (header, records) = plain_records(batch)?;
    let mut kept = Vec::with_capacity(records.len());
    let mut kept_count: i32 = 0;
    walk_records(&header, &records, |raw, record| {
        if keep(record) {
            kept.extend_from_slice(raw);
            kept_count += 1;
        }
    })?;
    if kept_count == header.records_count {
        return Ok(Retained::All);
    }
    if kept_count == 0 {
        return Ok(Retained::Nothing);
    }
    let codec = header.compression() as u16;
    let section = if codec == 0 {
        kept
    } else {
        compress_records(codec, &kept)?
    };
    let mut out = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&batch[..RECORD_BATCH_HEADER_BYTES]);
    out.extend_from_slice(&section);
    out[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&kept_count.to_be_bytes());
    seal_batch(&mut out);
    Ok(Retained::Some(out))
}

/// `batch` without any record: its header alone, offsets, timestamps, producer id, epoch
/// and base sequence kept, uncompressed (there is nothing to decompress). What the cleaner
/// keeps of an idempotent producer's last batch when every record of it goes, so the
/// producer's sequence survives in the log for its next write (Kafka's cleaner keeps it
/// so). Kafka's clients skip an empty batch and go on at the offset after it.
pub fn empty_batch(batch: &[u8]) -> Result<Vec<u8>, String> {
    let header = RecordBatchHeader::decode(batch).map_err(|e| e.to_string())?;
    let mut out = batch[..RECORD_BATCH_HEADER_BYTES].to_vec();
    let attributes = header.attributes & !COMPRESSION_BITS;
    out[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    out[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&0i32.to_be_bytes());
    seal_batch(&mut out);
    Ok(out)
}

/// The attribute bits naming the codec.
const COMPRESSION_BITS: i16 = 0x07;

/// The header and the uncompressed records section of `batch`.
fn plain_records(batch: &[u8]) -> Result<(RecordBatchHeader, Vec<u8>), String> {
    let header = RecordBatchHeader::decode(batch).map_err(|e| e.to_string())?;
    let section = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or("batch shorter than its length")?;
    let records = decompress_records(
        header.compression() as u16,
        section,
        DECOMPRESSED_RECORDS_BYTES_MAX,
    )?;
    Ok((header, records))
}

/// Walks `records_count` records of an uncompressed records section, handing each one's
/// raw bytes (length prefix included) and its parsed view to `visit`.
fn walk_records(
    header: &RecordBatchHeader,
    records: &[u8],
    mut visit: impl FnMut(&[u8], &KeyedRecord<'_>),
) -> Result<(), String> {
    let malformed = |index: i32| format!("record {index} does not parse");
    let mut pos = 0usize;
    for index in 0..header.records_count.max(0) {
        let parsed = (|| -> Option<(usize, KeyedRecord<'_>)> {
            let (length, used) = read_varlong(records.get(pos..)?)?;
            let body_start = pos + used;
            let body_end = body_start.checked_add(usize::try_from(length).ok()?)?;
            let body = records.get(body_start..body_end)?;
            // attributes i8, timestampDelta varlong, offsetDelta varint, key, value.
            let mut at = 1;
            let (timestamp_delta, used) = read_varlong(body.get(at..)?)?;
            at += used;
            let (offset_delta, used) = read_varlong(body.get(at..)?)?;
            at += used;
            let (key_length, used) = read_varlong(body.get(at..)?)?;
            at += used;
            let key = if key_length < 0 {
                None
            } else {
                let end = at.checked_add(usize::try_from(key_length).ok()?)?;
                let key = body.get(at..end)?;
                at = end;
                Some(key)
            };
            let (value_length, _) = read_varlong(body.get(at..)?)?;
            Some((
                body_end,
                KeyedRecord {
                    offset: header.base_offset + offset_delta,
                    timestamp: header.base_timestamp + timestamp_delta,
                    key,
                    is_tombstone: value_length < 0,
                },
            ))
        })();
        let (end, record) = parsed.ok_or_else(|| malformed(index))?;
        visit(&records[pos..end], &record);
        pos = end;
    }
    if pos != records.len() {
        return Err(format!(
            "{} bytes after the last record",
            records.len() - pos
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::{Codec, compress_batch};
    use crate::record_batch::{
        build_batch_with_timestamps, record_keys_and_values, set_base_offset, validate_framing,
    };

    fn keyed_batch(base_offset: i64) -> Vec<u8> {
        let mut batch = build_batch_with_timestamps(&[
            (1_000, Some(b"a"), b"1"),
            (1_001, Some(b"b"), b"2"),
            (1_002, Some(b"a"), b"3"),
            (1_003, Some(b"c"), b"4"),
        ]);
        set_base_offset(&mut batch, base_offset);
        batch
    }

    fn offsets_and_keys(batch: &[u8]) -> Vec<(i64, Vec<u8>)> {
        let mut out = Vec::new();
        for_each_keyed_record(batch, |record| {
            out.push((record.offset, record.key.unwrap_or_default().to_vec()))
        })
        .expect("parses");
        out
    }

    #[test]
    fn records_come_with_their_offsets_keys_and_timestamps() {
        let batch = keyed_batch(100);
        let mut seen = Vec::new();
        for_each_keyed_record(&batch, |record| {
            seen.push((
                record.offset,
                record.timestamp,
                record.key.map(<[u8]>::to_vec),
                record.is_tombstone,
            ))
        })
        .expect("parses");
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[2], (102, 1_002, Some(b"a".to_vec()), false));
    }

    #[test]
    fn a_filtered_batch_keeps_its_offsets_and_frame_and_passes_its_checks() {
        let batch = keyed_batch(100);
        let Retained::Some(cleaned) =
            retain_records(&batch, |record| record.offset != 100).expect("filters")
        else {
            panic!("some records kept");
        };
        let header = validate_framing(&cleaned).expect("a valid batch");
        assert_eq!(header.base_offset, 100);
        assert_eq!(header.last_offset_delta, 3, "the batch still ends at 103");
        assert_eq!(header.records_count, 3);
        assert_eq!(
            offsets_and_keys(&cleaned),
            vec![
                (101, b"b".to_vec()),
                (102, b"a".to_vec()),
                (103, b"c".to_vec())
            ]
        );
        let values: Vec<_> = record_keys_and_values(&cleaned)
            .expect("uncompressed")
            .into_iter()
            .map(|(_, value)| value.expect("a value").to_vec())
            .collect();
        assert_eq!(values, vec![b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
    }

    #[test]
    fn all_or_nothing_kept_says_so_instead_of_rebuilding() {
        let batch = keyed_batch(0);
        assert_eq!(retain_records(&batch, |_| true), Ok(Retained::All));
        assert_eq!(retain_records(&batch, |_| false), Ok(Retained::Nothing));
    }

    #[test]
    fn a_compressed_batch_is_filtered_and_recompressed_with_its_own_codec() {
        for codec in [Codec::Lz4, Codec::Zstd] {
            let batch = compress_batch(&keyed_batch(7), codec).expect("compresses");
            let Retained::Some(cleaned) =
                retain_records(&batch, |record| record.key != Some(&b"a"[..])).expect("filters")
            else {
                panic!("some records kept");
            };
            let header = validate_framing(&cleaned).expect("a valid batch");
            assert_eq!(header.compression() as u16, codec.id());
            assert_eq!(header.records_count, 2);
            assert_eq!(
                offsets_and_keys(&cleaned),
                vec![(8, b"b".to_vec()), (10, b"c".to_vec())]
            );
        }
    }

    #[test]
    fn gzip_and_snappy_batches_are_recompressed_as_clients_read_them() {
        let plain = keyed_batch(0);
        let section = &plain[RECORD_BATCH_HEADER_BYTES..];
        for id in [1u16, 2] {
            let compressed = compress_records(id, section).expect("compresses");
            let mut batch = plain[..RECORD_BATCH_HEADER_BYTES].to_vec();
            batch.extend_from_slice(&compressed);
            batch[21..23].copy_from_slice(&(id as i16).to_be_bytes());
            seal_batch(&mut batch);
            let Retained::Some(cleaned) =
                retain_records(&batch, |record| record.offset >= 2).expect("filters")
            else {
                panic!("some records kept");
            };
            let header = validate_framing(&cleaned).expect("a valid batch");
            assert_eq!(header.compression() as u16, id);
            assert_eq!(
                offsets_and_keys(&cleaned),
                vec![(2, b"a".to_vec()), (3, b"c".to_vec())]
            );
        }
    }

    #[test]
    fn a_compacted_topic_wants_a_key_on_every_record() {
        assert_eq!(check_keys(&keyed_batch(0)), Ok(()));
        let keyless = crate::record_batch::build_batch_of(&[
            (1, Some(&b"k"[..]), Some(&b"v"[..])),
            (2, None, Some(&b"v"[..])),
        ]);
        assert_eq!(
            check_keys(&keyless),
            Err(BatchError::KeylessRecord { offset_delta: 1 })
        );
        let compressed = compress_batch(&keyless, Codec::Zstd).expect("compresses");
        assert!(matches!(
            check_keys(&compressed),
            Err(BatchError::KeylessRecord { .. })
        ));
    }

    #[test]
    fn a_record_that_does_not_parse_is_an_error_not_a_panic() {
        let mut batch = keyed_batch(0);
        let cut = batch.len() - 3;
        batch.truncate(cut);
        seal_batch(&mut batch);
        assert!(for_each_keyed_record(&batch, |_| {}).is_err());
        assert!(retain_records(&batch, |_| true).is_err());
    }
}
