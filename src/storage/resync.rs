//! Finding the next intact batch after damaged bytes in a segment file. Recovery uses it
//! when a batch below the recovery point fails its checks: those bytes are durable data,
//! not a torn tail, so the log keeps them and goes on reading after them instead of
//! cutting everything from there on. Runs on the core that owns the log, at open.

use spindle_protocol::record_batch::{
    RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, validate_framing,
};

use super::error::{Result, StorageError};
use super::io::SegmentFile;

/// Bytes read per step of the search; a candidate batch longer than what is left of a step
/// is read whole on its own.
const SEARCH_STEP_BYTES: usize = 4 << 20;

/// The first batch in `file` at or after `from` and before `limit` that passes its framing
/// and CRC checks and whose base offset lies in `after_offset..`, with its position: where
/// valid data resumes after damage. `None` if there is none.
///
/// Every position is tried (a damaged length field says nothing about where the next batch
/// starts), with cheap tests first: magic 2 and a plausible length before the CRC.
pub(crate) async fn find_next_batch<F: SegmentFile>(
    file: &F,
    from: u64,
    limit: u64,
    after_offset: i64,
) -> Result<Option<(u64, RecordBatchHeader)>> {
    let mut start = from;
    while start + (RECORD_BATCH_HEADER_BYTES as u64) <= limit {
        let want = ((limit - start) as usize).min(SEARCH_STEP_BYTES);
        let chunk = file
            .read_at(start, want)
            .await
            .map_err(|e| StorageError::io("read segment", e))?;
        if chunk.len() < RECORD_BATCH_HEADER_BYTES {
            return Ok(None);
        }
        for at in 0..=chunk.len() - RECORD_BATCH_HEADER_BYTES {
            let Ok(header) = RecordBatchHeader::decode(&chunk[at..]) else {
                continue;
            };
            let position = start + at as u64;
            if header.magic != 2
                || header.base_offset < after_offset
                || header.batch_length < (RECORD_BATCH_HEADER_BYTES - 12) as i32
                || position + header.size_bytes() as u64 > limit
            {
                continue;
            }
            let valid = if at + header.size_bytes() <= chunk.len() {
                validate_framing(&chunk[at..]).is_ok()
            } else {
                let whole = file
                    .read_at(position, header.size_bytes())
                    .await
                    .map_err(|e| StorageError::io("read segment", e))?;
                validate_framing(&whole).is_ok()
            };
            if valid {
                return Ok(Some((position, header)));
            }
        }
        // The next step starts where a header could still begin unseen.
        start += (chunk.len() - RECORD_BATCH_HEADER_BYTES + 1) as u64;
        if chunk.len() < want {
            break;
        }
    }
    Ok(None)
}
