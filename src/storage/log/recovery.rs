//! Opening what a partition directory holds: sealed segments with their indexes, the last
//! segment scanned and cut after its last valid batch, and the recovery point below which
//! nothing is ever cut. Runs once per log, at open, on the owner core.

use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use tracing::{error, warn};

use super::compact::finish_interrupted_cleaning;
use super::flusher::{read_whole_file, write_whole_file};
use super::scan::scan_recovering;
use super::segment::{
    INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, align_down, parse_segment_file_name,
    segment_file_name,
};
use super::state::Inner;
use super::writer::{FlushOp, Writer, carry_buffer_bytes, new_writer};
use crate::storage::error::Result;
use crate::storage::index::{OffsetIndex, TimeIndex};
use crate::storage::recovery_point::{RECOVERY_POINT_FILE_NAMES, RecoveryPoint};
use crate::storage::{LogConfig, SegmentFile, Storage, StorageError};

/// Most time between a sync and the recovery point recording it (one small write and
/// fdatasync each time): data older than this is never cut as a torn tail.
pub(super) const RECOVERY_POINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub(super) struct Recovered<F: SegmentFile> {
    pub(super) segments: VecDeque<Segment<F>>,
    pub(super) writer: Writer<F::Buffer>,
    pub(super) ops: VecDeque<FlushOp<F::Buffer>>,
    pub(super) recovery_point: Option<RecoveryPoint>,
}

/// The newest recovery point the partition directory holds, if any slot is intact.
pub(super) async fn read_recovery_point<S: Storage>(
    storage: &S,
    dir: &Path,
) -> Option<RecoveryPoint> {
    let mut slots = [None, None];
    for (slot, name) in slots.iter_mut().zip(RECOVERY_POINT_FILE_NAMES) {
        *slot = read_whole_file(storage, &dir.join(name))
            .await
            .and_then(|bytes| RecoveryPoint::decode(&bytes));
    }
    RecoveryPoint::newest(slots)
}

/// Records that everything below `offset` is durable (the caller made it so), in the slot
/// the last write did not use.
pub(super) async fn write_recovery_point<S: Storage>(inner: &Inner<S>, offset: i64) -> Result<()> {
    let last = inner.recovery_point.get();
    if last.offset == offset {
        return Ok(());
    }
    let next = RecoveryPoint {
        sequence: last.sequence + 1,
        offset,
    };
    write_whole_file(
        &inner.storage,
        &inner.dir.join(next.file_name()),
        &next.encode(),
    )
    .await?;
    inner.recovery_point.set(next);
    inner.recovery_point_written.set(Instant::now());
    Ok(())
}

/// Opens what is in `dir`: sealed segments with their index files (rebuilt if missing or
/// stale) and the last segment scanned batch by batch, cut after its last valid batch.
pub(super) async fn recover<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
) -> Result<Recovered<S::File>> {
    finish_interrupted_cleaning(storage, dir).await?;
    let names = storage
        .list(dir)
        .map_err(|e| StorageError::io("list log dir", e))?;
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_segment_file_name(n, LOG_SUFFIX))
        .collect();
    bases.sort_unstable();
    // Index files whose segment is gone (a crash during deletion) are removed.
    for name in &names {
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            if let Some(base) = parse_segment_file_name(name, suffix)
                && bases.binary_search(&base).is_err()
            {
                storage
                    .remove(&dir.join(name))
                    .await
                    .map_err(|e| StorageError::io("remove orphan index", e))?;
            }
        }
    }
    let recovery_point = read_recovery_point(storage, dir).await;
    let durable_below = recovery_point.map_or(0, |point| point.offset);
    let mut segments = VecDeque::new();
    let mut ops = VecDeque::new();
    if bases.is_empty() {
        segments.push_back(Segment::new(0));
        ops.push_back(FlushOp::Create { segment_base: 0 });
        return Ok(Recovered {
            segments,
            writer: new_writer(),
            ops,
            recovery_point,
        });
    }
    for (index, &base) in bases.iter().enumerate() {
        let path = dir.join(segment_file_name(base, LOG_SUFFIX));
        let file = Rc::new(
            storage
                .open(&path, false)
                .await
                .map_err(|e| StorageError::io("open segment", e))?,
        );
        let is_last = index + 1 == bases.len();
        if is_last {
            let (segment, mut writer) =
                recover_active(storage, config, base, file, durable_below).await?;
            if segment.sealed {
                // Damaged bytes with nothing intact after them: the segment keeps them and
                // appends go to a new one, at offsets past everything once acknowledged.
                let next_base = segment.next_offset;
                segments.push_back(segment);
                segments.push_back(Segment::new(next_base));
                ops.push_back(FlushOp::Create {
                    segment_base: next_base,
                });
                writer = new_writer();
            } else {
                segments.push_back(segment);
            }
            return Ok(Recovered {
                segments,
                writer,
                ops,
                recovery_point,
            });
        }
        let next_base = bases[index + 1];
        segments.push_back(recover_sealed(storage, dir, config, base, next_base, file).await?);
    }
    unreachable!("the loop returns at the last segment")
}

pub(super) async fn recover_sealed<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
    base: i64,
    next_base: i64,
    file: Rc<S::File>,
) -> Result<Segment<S::File>> {
    let size_bytes = file
        .file_size()
        .await
        .map_err(|e| StorageError::io("stat segment", e))?;
    let offset_count = (next_base - base).max(0) as u64;
    let offset_index = read_whole_file(storage, &dir.join(segment_file_name(base, INDEX_SUFFIX)))
        .await
        .and_then(|bytes| OffsetIndex::decode(&bytes, size_bytes, offset_count));
    let time_index = read_whole_file(
        storage,
        &dir.join(segment_file_name(base, TIME_INDEX_SUFFIX)),
    )
    .await
    .and_then(|bytes| TimeIndex::decode(&bytes, offset_count));
    let mut segment = Segment::new(base);
    segment.file = Some(file.clone());
    segment.sealed = true;
    segment.seal_complete = true;
    match (offset_index, time_index) {
        (Some(offset_index), Some(time_index)) if size_bytes > 0 || offset_count == 0 => {
            segment.size_bytes = size_bytes;
            segment.next_offset = next_base;
            segment.max_timestamp = time_index.last_timestamp().unwrap_or(-1);
            segment.offset_index = offset_index;
            segment.time_index = time_index;
        }
        _ => {
            warn!(dir = %dir.display(), base, "rebuilding the index of a sealed segment");
            let mut rebuilt: Segment<S::File> = Segment::new(base);
            // Everything in a sealed segment was synced when it was sealed: a batch that
            // fails here is damage to report, not a tail to cut.
            let end = scan_recovering(&*file, &mut rebuilt, config, size_bytes, next_base).await?;
            if end.error.is_some() && rebuilt.next_offset < next_base {
                rebuilt.damaged.push((rebuilt.next_offset, next_base));
            }
            segment.damaged = std::mem::take(&mut rebuilt.damaged);
            rebuilt.next_offset = next_base;
            rebuilt.close_time_index();
            // A damaged segment keeps every byte and no index files: each open finds the
            // damage again and logs it.
            let damaged = !segment.damaged.is_empty();
            segment.size_bytes = if damaged {
                size_bytes
            } else {
                rebuilt.size_bytes
            };
            segment.next_offset = rebuilt.next_offset;
            segment.max_timestamp = rebuilt.max_timestamp;
            segment.offset_index = rebuilt.offset_index;
            segment.time_index = rebuilt.time_index;
            if damaged {
                segment.written_bytes = segment.size_bytes;
                return Ok(segment);
            }
            write_whole_file(
                storage,
                &dir.join(segment_file_name(base, INDEX_SUFFIX)),
                &segment.offset_index.encode(),
            )
            .await?;
            write_whole_file(
                storage,
                &dir.join(segment_file_name(base, TIME_INDEX_SUFFIX)),
                &segment.time_index.encode(),
            )
            .await?;
        }
    }
    segment.written_bytes = segment.size_bytes;
    Ok(segment)
}

/// Scans the last segment and keeps its valid prefix. What fails its checks at or after
/// `durable_below` (the recovery point) is a torn tail: it is cut, so stale bytes can
/// never line up behind new appends. Damage below it is kept (see [`scan_recovering`]);
/// when nothing intact follows that damage, the segment comes back sealed, ending at
/// `durable_below`, and the caller starts a new one there. Otherwise the partial last
/// block is reloaded into a write buffer.
pub(super) async fn recover_active<S: Storage>(
    storage: &S,
    config: &LogConfig,
    base: i64,
    file: Rc<S::File>,
    durable_below: i64,
) -> Result<(Segment<S::File>, Writer<<S::File as SegmentFile>::Buffer>)> {
    let file_size = file
        .file_size()
        .await
        .map_err(|e| StorageError::io("stat segment", e))?;
    let mut segment = Segment::new(base);
    let end = scan_recovering(&*file, &mut segment, config, file_size, durable_below).await?;
    let valid_end = segment.size_bytes;
    debug_assert_eq!(end.position, valid_end);
    if end.error.is_some() && segment.next_offset < durable_below {
        segment.damaged.push((segment.next_offset, durable_below));
        segment.next_offset = durable_below;
        segment.size_bytes = file_size;
        segment.written_bytes = file_size;
        segment.preallocated_bytes = file_size;
        segment.sealed = true;
        segment.seal_complete = true;
        segment.file = Some(file);
        return Ok((segment, new_writer()));
    }
    if segment.next_offset < durable_below {
        // The file ends (cleanly) before offsets that were durable: they are gone. Never
        // hand them out again.
        error!(
            segment = base,
            "DAMAGED DATA below the recovery point: offsets {}..{durable_below} are missing \
             from the active segment; never reused",
            segment.next_offset
        );
        segment.damaged.push((segment.next_offset, durable_below));
        segment.next_offset = durable_below;
    }
    if let Some(reason) = &end.error {
        // Zeros after the last batch are the normal end of a preallocated file.
        let tail = file
            .read_at(valid_end, 64)
            .await
            .map_err(|e| StorageError::io("read segment", e))?;
        if tail.iter().any(|&b| b != 0) {
            warn!(
                base,
                valid_end,
                file_size,
                reason = reason.as_str(),
                "cutting a torn tail from the active segment"
            );
        }
    }
    if file_size != valid_end {
        file.truncate(valid_end)
            .await
            .map_err(|e| StorageError::io("truncate torn tail", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync", e))?;
    }
    let mut writer = new_writer();
    writer.position = align_down(valid_end);
    let tail_len = (valid_end - writer.position) as usize;
    if tail_len > 0 {
        let tail = file
            .read_at(writer.position, tail_len)
            .await
            .map_err(|e| StorageError::io("read tail block", e))?;
        if tail.len() != tail_len {
            return Err(StorageError::CorruptOnDisk {
                segment_base_offset: base,
                position: writer.position,
                reason: "short read of the last block".into(),
            });
        }
        let mut buffer = storage.alloc_buffer(carry_buffer_bytes(config));
        buffer.as_mut()[..tail_len].copy_from_slice(&tail);
        writer.buffer = Some(buffer);
        writer.len = tail_len;
        writer.clean_len = tail_len;
    }
    segment.file = Some(file);
    segment.written_bytes = valid_end;
    segment.preallocated_bytes = valid_end;
    Ok((segment, writer))
}
