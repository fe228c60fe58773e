//! DeleteRecords: the log start offset raised to an offset inside the log, persisted, and
//! the whole segments below it removed. Readers asking below it get OFFSET_OUT_OF_RANGE (a
//! consumer resets), ListOffsets earliest answers it. Owner core only.
//!
//! The start is written (`log-start-offset`, through a temporary file and a rename) before
//! any segment goes, so a crash in between leaves the start as asked, never the deleted
//! records readable again.

use std::path::Path;

use tracing::debug;

use super::flusher::remove_segment_files;
use super::offset_file::{read_offset_file, write_offset_file};
use crate::storage::error::Result;
use crate::storage::{PartitionLog, Storage, StorageError};

/// The persisted log start offset, in the partition's directory.
pub const LOG_START_FILE_NAME: &str = "log-start-offset";

impl<S: Storage> PartitionLog<S> {
    /// Raises the log start offset to `offset` (DeleteRecords; -1 means the high
    /// watermark), never past the high watermark. Returns the log start offset after it
    /// (Kafka's low watermark); a lower `offset` than the current start changes nothing.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64> {
        let inner = &*self.inner;
        let high_watermark = inner.high_watermark();
        let offset = if offset == -1 { high_watermark } else { offset };
        let start = self.log_start_offset();
        if offset < 0 || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: start,
                high_watermark,
            });
        }
        if offset <= start {
            return Ok(start);
        }
        inner.state.borrow().check_usable()?;
        write_log_start(&inner.storage, &inner.dir, offset).await?;
        let doomed: Vec<i64> = {
            let mut state = inner.state.borrow_mut();
            state.log_start_floor = state.log_start_floor.max(offset);
            let mut doomed = Vec::new();
            // Whole segments below the new start go, never the active one, nor one the
            // cleaner is swapping (the next pass, or retention, takes it).
            while state.segments.len() > 1
                && !state.cleaning
                && state.segments[0].seal_complete
                && state.segments[1].base_offset <= offset
            {
                doomed.push(state.segments.pop_front().expect("len > 1").base_offset);
            }
            let log_start_offset = state.log_start_offset();
            inner
                .leader_epochs
                .borrow_mut()
                .truncate_from_start(log_start_offset);
            while state
                .cache
                .front()
                .is_some_and(|cached| cached.next_offset <= log_start_offset)
            {
                state.cache_pop_front();
            }
            if state
                .read_ahead
                .as_ref()
                .is_some_and(|read_ahead| read_ahead.next_offset < log_start_offset)
            {
                state.read_ahead_take();
            }
            inner.assert_offsets_ordered(&state);
            doomed
        };
        for base_offset in &doomed {
            remove_segment_files(&inner.storage, &inner.dir, *base_offset).await?;
        }
        if !doomed.is_empty() {
            inner
                .storage
                .sync_dir(&inner.dir)
                .await
                .map_err(|e| StorageError::io("sync log dir", e))?;
        }
        debug!(dir = %inner.dir.display(), offset, segments = doomed.len(), "deleted records");
        Ok(self.log_start_offset())
    }
}

/// Writes `offset` as the log start, crash-safely.
async fn write_log_start<S: Storage>(storage: &S, dir: &Path, offset: i64) -> Result<()> {
    write_offset_file(storage, dir, LOG_START_FILE_NAME, offset).await
}

/// The persisted log start offset, if the directory holds a readable one.
pub(super) async fn read_log_start<S: Storage>(storage: &S, dir: &Path) -> Result<Option<i64>> {
    read_offset_file(storage, dir, LOG_START_FILE_NAME).await
}
