//! Building uncompressed RecordBatch v2 bytes from records: the group coordinator's
//! committed-offset records, the admin CLI's produce, and tests, benchmarks and load
//! generators. Client batches are never rebuilt here; they are stored as they arrive.
//! Pure code, no I/O; runs on whichever core calls it.

use super::{
    BASE_SEQUENCE_POS, BASE_TIMESTAMP_POS, LAST_OFFSET_DELTA_POS, MAGIC_POS, MAGIC_V2,
    MAX_TIMESTAMP_POS, PARTITION_LEADER_EPOCH_POS, PRODUCER_EPOCH_POS, PRODUCER_ID_POS,
    RECORD_BATCH_HEADER_BYTES, RECORDS_COUNT_POS, seal_batch, write_varlong,
};

/// Builds an uncompressed RecordBatch v2 holding `records` (key, value) with create
/// timestamps `base_timestamp + index`.
pub fn build_batch(base_timestamp: i64, records: &[(Option<&[u8]>, &[u8])]) -> Vec<u8> {
    build_batch_with_timestamps(
        &records
            .iter()
            .enumerate()
            .map(|(index, (key, value))| (base_timestamp + index as i64, *key, *value))
            .collect::<Vec<_>>(),
    )
}

/// One record for [`build_batch_with_timestamps`]: (timestamp, key, value).
pub type TimedRecord<'a> = (i64, Option<&'a [u8]>, &'a [u8]);

/// Like [`build_batch`] with an explicit timestamp per record.
pub fn build_batch_with_timestamps(records: &[TimedRecord<'_>]) -> Vec<u8> {
    build_batch_of(
        &records
            .iter()
            .map(|&(timestamp, key, value)| (timestamp, key, Some(value)))
            .collect::<Vec<_>>(),
    )
}

/// One record for [`build_batch_of`]: (timestamp, key, value), a `None` value being a
/// tombstone.
pub type NullableRecord<'a> = (i64, Option<&'a [u8]>, Option<&'a [u8]>);

/// Like [`build_batch_with_timestamps`], with null values (tombstones) allowed.
pub fn build_batch_of(records: &[NullableRecord<'_>]) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let base_timestamp = records.iter().map(|r| r.0).min().expect("non-empty");
    let max_timestamp = records.iter().map(|r| r.0).max().expect("non-empty");
    let mut out = vec![0u8; RECORD_BATCH_HEADER_BYTES];
    let mut body = Vec::new();
    for (index, (timestamp, key, value)) in records.iter().enumerate() {
        body.clear();
        body.push(0); // record attributes
        write_varlong(&mut body, timestamp - base_timestamp);
        write_varlong(&mut body, index as i64);
        match key {
            Some(key) => {
                write_varlong(&mut body, key.len() as i64);
                body.extend_from_slice(key);
            }
            None => write_varlong(&mut body, -1),
        }
        match value {
            Some(value) => {
                write_varlong(&mut body, value.len() as i64);
                body.extend_from_slice(value);
            }
            None => write_varlong(&mut body, -1),
        }
        write_varlong(&mut body, 0); // header count
        write_varlong(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    out[PARTITION_LEADER_EPOCH_POS..PARTITION_LEADER_EPOCH_POS + 4]
        .copy_from_slice(&(-1i32).to_be_bytes());
    out[MAGIC_POS] = MAGIC_V2 as u8;
    let last_offset_delta = records.len() as i32 - 1;
    out[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4]
        .copy_from_slice(&last_offset_delta.to_be_bytes());
    out[BASE_TIMESTAMP_POS..BASE_TIMESTAMP_POS + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    out[PRODUCER_ID_POS..PRODUCER_ID_POS + 8].copy_from_slice(&(-1i64).to_be_bytes());
    out[PRODUCER_EPOCH_POS..PRODUCER_EPOCH_POS + 2].copy_from_slice(&(-1i16).to_be_bytes());
    out[BASE_SEQUENCE_POS..BASE_SEQUENCE_POS + 4].copy_from_slice(&(-1i32).to_be_bytes());
    out[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4]
        .copy_from_slice(&(records.len() as i32).to_be_bytes());
    seal_batch(&mut out);
    out
}
