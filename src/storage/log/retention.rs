//! Time- and size-based segment rolling and retention, and truncation to an offset. Owner
//! core only; truncation takes the log exclusively.

use tracing::debug;

use super::epochs::write_leader_epochs;
use super::flusher::{remove_if_present, remove_segment_files};
use super::recovery::{recover_active, write_recovery_point};
use super::scan::{SCAN_CHUNK_BYTES, scan_segment};
use super::segment::{INDEX_SUFFIX, Segment, TIME_INDEX_SUFFIX, segment_file_name};
use super::writer::roll_segment;
use crate::storage::error::Result;
use crate::storage::io::SegmentFile;
use crate::storage::{PartitionLog, Storage, StorageError};

impl<S: Storage> PartitionLog<S> {
    /// Rolls the active segment if it is older than `segment_ms` at `now_ms` (appends also
    /// check, with the wall clock). Returns whether it rolled.
    pub fn roll_if_due(&self, now_ms: i64) -> bool {
        let mut state = self.inner.state.borrow_mut();
        let due = {
            let active = state.active();
            active.size_bytes > 0 && now_ms - active.created_ms >= self.inner.config().segment_ms
        };
        if due && state.check_usable().is_ok() && !state.exclusive {
            roll_segment(&mut state, &self.inner.storage, &self.inner.config());
            drop(state);
            self.inner.flusher_wake.notify();
        }
        due
    }

    /// Deletes whole old segments beyond `retention_bytes` or older than `retention_ms`
    /// (by their newest timestamp, relative to `now_ms`), when the cleanup policy has
    /// `delete`. The active segment is never deleted, nor a segment the cleaner is
    /// swapping. Returns the number of segments deleted.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        let config = &self.inner.config();
        let doomed: Vec<Segment<S::File>> = {
            let mut state = self.inner.state.borrow_mut();
            state.check_usable()?;
            if state.exclusive || state.cleaning {
                return Ok(0);
            }
            // A compacted topic without `delete` keeps its (cleaned) segments for good.
            if !config.cleanup_policy.delete {
                return Ok(0);
            }
            let high_watermark = self.inner.high_watermark();
            let mut total: u64 = state.segments.iter().map(|s| s.size_bytes).sum();
            let mut doomed = Vec::new();
            while state.segments.len() > 1 {
                let oldest = state.segments.front().expect("len > 1");
                // As Kafka: never past the high watermark, so the log start stays at or
                // below it (a consumer is never told data it could not yet see is gone).
                if !oldest.seal_complete || state.segments[1].base_offset > high_watermark {
                    break;
                }
                let over_size = config.retention_bytes >= 0
                    && total - oldest.size_bytes >= config.retention_bytes as u64;
                let expired = config.retention_ms >= 0
                    && oldest.max_timestamp >= 0
                    && now_ms - oldest.max_timestamp > config.retention_ms;
                let expired_empty = config.retention_ms >= 0 && oldest.size_bytes == 0;
                if !(over_size || expired || expired_empty) {
                    break;
                }
                total -= oldest.size_bytes;
                doomed.push(state.segments.pop_front().expect("len > 1"));
            }
            self.inner.assert_offsets_ordered(&state);
            let log_start_offset = state.log_start_offset();
            self.inner
                .leader_epochs
                .borrow_mut()
                .truncate_from_start(log_start_offset);
            if state
                .read_ahead
                .as_ref()
                .is_some_and(|r| r.next_offset < log_start_offset)
            {
                state.read_ahead_take();
            }
            while state
                .cache
                .front()
                .is_some_and(|c| c.base_offset < log_start_offset)
            {
                state.cache_pop_front();
            }
            doomed
        };
        for segment in &doomed {
            debug!(dir = %self.inner.dir.display(), base_offset = segment.base_offset, "retention deletes segment");
            remove_segment_files(&self.inner.storage, &self.inner.dir, segment.base_offset).await?;
        }
        if !doomed.is_empty() {
            self.inner
                .storage
                .sync_dir(&self.inner.dir)
                .await
                .map_err(|e| StorageError::io("sync log dir", e))?;
        }
        Ok(doomed.len())
    }

    /// Removes every batch at or after `offset` (for replication). Kafka semantics: the cut
    /// is at the start of the batch containing `offset`, so the new log end may be below it.
    /// Appends wait until it finishes. Returns the new log end offset.
    pub async fn truncate_to(&self, offset: i64) -> Result<i64> {
        self.inner.state.borrow_mut().exclusive = true;
        let result = self.truncate_exclusive(offset).await;
        self.inner.state.borrow_mut().exclusive = false;
        self.inner.progress.notify();
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    pub(super) async fn truncate_exclusive(&self, offset: i64) -> Result<i64> {
        let inner = &*self.inner;
        // Let the flusher finish everything queued so the disk holds all appended bytes.
        loop {
            let progress = inner.progress.listen();
            {
                let state = inner.state.borrow();
                state.check_usable()?;
                if state.ops.is_empty()
                    && !state.writer.has_new_bytes()
                    && !state.syncing
                    && !state.cleaning
                    && inner.written.get() == state.log_end_offset
                {
                    break;
                }
            }
            inner.flusher_wake.notify();
            progress.await;
        }
        if offset >= self.log_end_offset() {
            // Nothing to cut, but an epoch recorded at the log end with no batch of it (a
            // replica made leader, then follower, before it took a write) goes: the new
            // leader's batches at these offsets are of other epochs. Kept, it would make
            // this replica name an epoch the leader never had in every fetch, and answer
            // that epoch's end wrongly once it leads (as Kafka's UnifiedLog.truncateTo).
            let end = self.log_end_offset();
            if inner.leader_epochs.borrow_mut().truncate_from_end(end) {
                write_leader_epochs(inner).await?;
            }
            return Ok(end);
        }
        let (keep_base, doomed) = {
            let mut state = inner.state.borrow_mut();
            state.truncations += 1;
            state.read_ahead_take();
            let keep = state.segment_index_for(offset).unwrap_or(0);
            let doomed: Vec<i64> = state
                .segments
                .drain(keep + 1..)
                .map(|segment| segment.base_offset)
                .collect();
            (state.segments[keep].base_offset, doomed)
        };
        for base_offset in doomed {
            remove_segment_files(&inner.storage, &inner.dir, base_offset).await?;
        }
        let (file, keep_written) = {
            let state = inner.state.borrow();
            let segment = state.segments.back().expect("kept one");
            (segment.file.clone(), segment.written_bytes)
        };
        // Everything queued has run, so every segment's file exists.
        let file = file.expect("flushed segments have files");
        // Cut where the batch holding `offset` starts (or at the end if none does).
        let mut cut_position = keep_written;
        let mut new_end_max = offset;
        if offset <= keep_base {
            cut_position = 0;
            new_end_max = keep_base;
        } else {
            let end = scan_segment(
                &*file,
                keep_base,
                0,
                keep_written,
                SCAN_CHUNK_BYTES,
                |position, header, _| {
                    if header.next_offset() > offset {
                        cut_position = position;
                        new_end_max = header.base_offset;
                        return false;
                    }
                    true
                },
            )
            .await?;
            if let Some(reason) = end.error {
                return Err(StorageError::CorruptOnDisk {
                    segment_base_offset: keep_base,
                    position: end.position,
                    reason,
                });
            }
        }
        // Nothing at or past the new end is durable any more: lower the recovery point
        // before cutting, so recovery after a crash here treats the rest as a tail.
        let recovery_point = inner.recovery_point.get().offset.min(new_end_max);
        write_recovery_point(inner, recovery_point).await?;
        // The sealed index files of the kept segment are stale now; it becomes active.
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            remove_if_present(
                &inner.storage,
                &inner.dir.join(segment_file_name(keep_base, suffix)),
            )
            .await?;
        }
        file.truncate(cut_position)
            .await
            .map_err(|e| StorageError::io("truncate", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync", e))?;
        inner
            .storage
            .sync_dir(&inner.dir)
            .await
            .map_err(|e| StorageError::io("sync log dir", e))?;
        // Rebuild the kept segment as the active one from what is now on disk.
        let (segment, writer) =
            recover_active(&inner.storage, &inner.config(), keep_base, file, 0).await?;
        let new_end = segment.next_offset;
        {
            let mut state = inner.state.borrow_mut();
            state.segments.pop_back();
            state.segments.push_back(segment);
            state.writer = writer;
            state.log_end_offset = new_end;
            // A cut below a DeleteRecords start (a follower's divergence) keeps the start
            // within the log, as the offsets' order demands.
            state.log_start_floor = state.log_start_floor.min(new_end);
            state.sync_requested = state.sync_requested.min(new_end);
            while state.cache.back().is_some_and(|c| c.next_offset > new_end) {
                state.cache_pop_back();
            }
            state
                .unpublished_bytes
                .retain(|&(next_offset, _)| next_offset <= new_end);
            inner.written.reset(new_end);
            inner.durable.reset(new_end);
            inner.assert_offsets_ordered(&state);
        }
        // Epochs that began in the cut part are gone with it, on disk too: a later epoch
        // written at these offsets must not be read back as the old one.
        if inner.leader_epochs.borrow_mut().truncate_from_end(new_end) {
            write_leader_epochs(inner).await?;
        }
        debug!(dir = %inner.dir.display(), offset, new_end, cut_position, "truncated");
        Ok(new_end)
    }
}
