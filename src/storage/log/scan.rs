//! Scanning segment bytes batch by batch (framing, CRC, offset continuity), for recovery,
//! cold reads and `spindle dump-log`; resuming past durable damage. Owner core only (or a
//! one-off executor for dump-log).

use bytes::Bytes;
use tracing::error;

use super::segment::Segment;
use crate::storage::error::Result;
use crate::storage::resync::find_next_batch;
use crate::storage::{LogConfig, SegmentFile, StorageError};
use spindle_protocol::record_batch::{self, RecordBatchHeader, validate_framing};

/// Bytes read per device request when scanning a segment (recovery, cold reads).
pub(super) const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Bytes a read of up to `max_bytes` of batches asks of the device at a time: a little more
/// than `max_bytes`, since it starts at the index entry at or before the offset asked for.
pub(super) fn scan_chunk_bytes(max_bytes: usize, config: &LogConfig) -> usize {
    max_bytes
        .saturating_add(config.index_interval_bytes as usize)
        .clamp(
            record_batch::RECORD_BATCH_HEADER_BYTES,
            SCAN_CHUNK_BYTES * 16,
        )
}

/// How a scan of a segment ended.
pub(super) struct ScanEnd {
    /// Position after the last valid batch visited (or where the visitor stopped).
    pub(super) position: u64,
    /// Why the scan stopped before `limit`, if the bytes there were not a valid batch.
    pub(super) error: Option<String>,
}

/// Reads batches of a segment from `start` up to `limit`, validating each (framing, CRC and
/// offsets that only grow) and handing it to `visit` until it returns false. Chunks of
/// `chunk_bytes` are read at a time; a batch larger than a chunk is re-read whole.
pub(super) async fn scan_segment<F: SegmentFile>(
    file: &F,
    segment_base: i64,
    start: u64,
    limit: u64,
    chunk_bytes: usize,
    visit: impl FnMut(u64, &RecordBatchHeader, Bytes) -> bool,
) -> Result<ScanEnd> {
    scan_segment_while(
        file,
        segment_base,
        start,
        limit,
        chunk_bytes,
        |_| true,
        visit,
    )
    .await
}

/// [`scan_segment`], asking `wants` about a batch the last read cut off (with its header, if
/// the header itself was not cut) before reading on for it: a reader that would not take
/// that batch stops there instead of paying a whole further read of the device.
pub(super) async fn scan_segment_while<F: SegmentFile>(
    file: &F,
    segment_base: i64,
    start: u64,
    limit: u64,
    chunk_bytes: usize,
    wants: impl FnMut(Option<&RecordBatchHeader>) -> bool,
    visit: impl FnMut(u64, &RecordBatchHeader, Bytes) -> bool,
) -> Result<ScanEnd> {
    scan_segment_from(
        file,
        segment_base,
        start,
        limit,
        chunk_bytes,
        None,
        wants,
        visit,
    )
    .await
}

/// The bytes at a scan's start, already read (a read-ahead): what was asked of the device
/// and what came back.
pub(super) struct FirstChunk {
    pub(super) want: usize,
    pub(super) bytes: Bytes,
}

/// [`scan_segment_while`], starting from `first` instead of a device read when given.
#[allow(clippy::too_many_arguments)]
pub(super) async fn scan_segment_from<F: SegmentFile>(
    file: &F,
    segment_base: i64,
    start: u64,
    limit: u64,
    chunk_bytes: usize,
    mut first: Option<FirstChunk>,
    mut wants: impl FnMut(Option<&RecordBatchHeader>) -> bool,
    mut visit: impl FnMut(u64, &RecordBatchHeader, Bytes) -> bool,
) -> Result<ScanEnd> {
    let chunk_bytes = chunk_bytes.clamp(
        record_batch::RECORD_BATCH_HEADER_BYTES,
        SCAN_CHUNK_BYTES * 16,
    );
    let mut position = start;
    let mut expected_offset: Option<i64> = if start == 0 { Some(segment_base) } else { None };
    // Bytes the next read must hold: a whole batch that did not fit in the last chunk.
    let mut read_at_least = chunk_bytes;
    while position < limit {
        let (want, chunk) = match first.take() {
            // Read no further than `limit`, as if the device had been asked for just that.
            Some(FirstChunk { want, bytes }) => {
                let want = want.min((limit - position) as usize);
                (want, bytes.slice(..bytes.len().min(want)))
            }
            None => {
                let want = ((limit - position) as usize).min(read_at_least);
                let chunk = file
                    .read_at(position, want)
                    .await
                    .map_err(|e| StorageError::io("read segment", e))?;
                (want, chunk)
            }
        };
        read_at_least = chunk_bytes;
        let mut consumed = 0usize;
        while consumed < chunk.len() {
            let rest = &chunk[consumed..];
            let batch_position = position + consumed as u64;
            // Bytes this batch needs: its declared size, or a header's if the header is cut.
            let needed = RecordBatchHeader::decode(rest)
                .map(|h| h.size_bytes())
                .unwrap_or(record_batch::RECORD_BATCH_HEADER_BYTES);
            let cut_by_our_read = chunk.len() == want;
            if needed > rest.len() && cut_by_our_read && batch_position + needed as u64 <= limit {
                if !wants(RecordBatchHeader::decode(rest).ok().as_ref()) {
                    return Ok(ScanEnd {
                        position: batch_position,
                        error: None,
                    });
                }
                // The chunk ended inside this batch: read on from its start, whole.
                read_at_least = needed.max(chunk_bytes);
                break;
            }
            let stop = |reason: String| ScanEnd {
                position: batch_position,
                error: Some(reason),
            };
            let header = match validate_framing(rest) {
                Ok(header) => header,
                Err(error) => return Ok(stop(error.to_string())),
            };
            // Offsets only grow; a gap between batches is what compaction leaves (a batch
            // whose every record was superseded is gone), as in Kafka's logs.
            match expected_offset {
                Some(expected) if header.base_offset < expected => {
                    return Ok(stop(format!(
                        "batch base_offset {} below {expected}, where the batch before ended",
                        header.base_offset
                    )));
                }
                None if header.base_offset < segment_base => {
                    return Ok(stop(format!(
                        "batch base_offset {} below segment base {segment_base}",
                        header.base_offset
                    )));
                }
                _ => {}
            }
            let size = header.size_bytes();
            consumed += size;
            expected_offset = Some(header.next_offset());
            if !visit(
                batch_position,
                &header,
                chunk.slice(consumed - size..consumed),
            ) {
                return Ok(ScanEnd {
                    position: position + consumed as u64,
                    error: None,
                });
            }
        }
        position += consumed as u64;
        if chunk.len() < want {
            // The file ended before `limit`.
            return Ok(ScanEnd {
                position,
                error: (position < limit).then(|| "segment shorter than expected".to_string()),
            });
        }
    }
    Ok(ScanEnd {
        position,
        error: None,
    })
}

/// Scans a segment from its start up to `limit`, indexing every batch into `segment`.
/// Where a batch below `durable_below` fails its checks, those bytes are durable data, not
/// a torn tail: the damage is recorded (and logged loudly) and the scan resumes at the next
/// intact batch. Returns how the scan finally ended: cleanly, at a failure at or after
/// `durable_below` (a torn tail), or at damage it could not get past.
pub(super) async fn scan_recovering<F: SegmentFile>(
    file: &F,
    segment: &mut Segment<F>,
    config: &LogConfig,
    limit: u64,
    durable_below: i64,
) -> Result<ScanEnd> {
    let mut position = 0;
    loop {
        let end = scan_segment(
            file,
            segment.base_offset,
            position,
            limit,
            SCAN_CHUNK_BYTES,
            |position, header, _| {
                segment.index_batch(header, position, config.index_interval_bytes);
                true
            },
        )
        .await?;
        let damaged_from = segment.next_offset;
        let Some(reason) = &end.error else {
            return Ok(end);
        };
        if damaged_from >= durable_below {
            return Ok(end);
        }
        let resume = find_next_batch(file, end.position + 1, limit, damaged_from + 1).await?;
        let resume_offset = resume.map_or(durable_below, |(_, header)| header.base_offset);
        error!(
            segment = segment.base_offset,
            position = end.position,
            reason = reason.as_str(),
            "DAMAGED DATA below the recovery point: offsets {damaged_from}..{resume_offset} \
             fail their checks on disk; kept, not served, never reused"
        );
        segment.damaged.push((damaged_from, resume_offset));
        let Some((at, _)) = resume else {
            return Ok(end);
        };
        // Index the batch where reading resumes, so no read starts before the damage.
        segment.bytes_since_index_entry = config.index_interval_bytes;
        position = at;
    }
}

/// What a scan of one whole segment file found.
#[derive(Debug)]
pub struct SegmentScan {
    pub file_bytes: u64,
    /// Position after the last valid batch.
    pub valid_bytes: u64,
    /// Offset after the last valid batch (the segment's base if it holds none).
    pub next_offset: i64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stop_reason: Option<String>,
    /// Whether every byte after the last valid batch is zero (a preallocated tail).
    pub tail_is_zeros: bool,
}

/// Scans a whole segment file with recovery's checks (framing, CRC-32C, offset continuity
/// from `base_offset`), calling `visit` with each valid batch's position and header, then
/// reads what follows the last valid batch to tell a preallocated tail (zeros) from torn or
/// corrupt bytes. Reads only: `spindle dump-log` runs it over a [`ReadOnlyFile`].
///
/// [`ReadOnlyFile`]: crate::storage::read_only::ReadOnlyFile
pub async fn scan_segment_file<F: SegmentFile>(
    file: &F,
    base_offset: i64,
    mut visit: impl FnMut(u64, &RecordBatchHeader),
) -> Result<SegmentScan> {
    let file_bytes = file
        .file_size()
        .await
        .map_err(|e| StorageError::io("segment size", e))?;
    let mut next_offset = base_offset;
    let end = scan_segment(
        file,
        base_offset,
        0,
        file_bytes,
        SCAN_CHUNK_BYTES,
        |position, header, _| {
            visit(position, header);
            next_offset = header.next_offset();
            true
        },
    )
    .await?;
    let mut tail_is_zeros = true;
    let mut position = end.position;
    while position < file_bytes && tail_is_zeros {
        let chunk = file
            .read_at(
                position,
                SCAN_CHUNK_BYTES.min((file_bytes - position) as usize),
            )
            .await
            .map_err(|e| StorageError::io("read segment", e))?;
        if chunk.is_empty() {
            break;
        }
        tail_is_zeros = chunk.iter().all(|&byte| byte == 0);
        position += chunk.len() as u64;
    }
    Ok(SegmentScan {
        file_bytes,
        valid_bytes: end.position,
        next_offset,
        stop_reason: end.error,
        tail_is_zeros,
    })
}
