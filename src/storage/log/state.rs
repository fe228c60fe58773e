//! The log's mutable state (`LogState`, behind one `RefCell`) and the shared part every task
//! of the log holds (`Inner`): watermarks, cache accounting, the free-buffer pool, and the
//! checks that the offsets only move forward. Owner core only.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use super::cache::CachedBatch;
use super::read_ahead::ReadAhead;
use super::segment::Segment;
use super::writer::{FlushOp, Writer};
use crate::storage::cache_budget::{BudgetSeat, CacheEvict};
use crate::storage::error::Result;
use crate::storage::leader_epoch::LeaderEpochs;
use crate::storage::recovery_point::RecoveryPoint;
use crate::storage::wait::{Event, Watermark};
use crate::storage::{CacheBudget, FlushPolicy, LogConfig, SegmentFile, Storage, StorageError};

pub(super) struct LogState<F: SegmentFile> {
    pub(super) segments: VecDeque<Segment<F>>,
    pub(super) log_end_offset: i64,
    pub(super) cache: VecDeque<CachedBatch>,
    pub(super) cache_bytes: usize,
    pub(super) writer: Writer<F::Buffer>,
    pub(super) ops: VecDeque<FlushOp<F::Buffer>>,
    pub(super) dirty_bytes: usize,
    /// A caller waits for durability up to here.
    pub(super) sync_requested: i64,
    pub(super) unsynced_bytes: u64,
    pub(super) last_sync: Instant,
    pub(super) failure: Option<StorageError>,
    pub(super) closing: bool,
    pub(super) flusher_running: bool,
    /// Appends wait while set (truncation has the log), and the flusher starts no sync.
    pub(super) exclusive: bool,
    /// An fdatasync of the active segment is running; truncation waits for it, since it
    /// marks durable the offsets that were written when it began.
    pub(super) syncing: bool,
    /// Direct writes the flusher has in flight (it needs waking on append only when this
    /// is zero, or when a full buffer was queued).
    pub(super) writes_in_flight: usize,
    pub(super) leader_epoch: i32,
    /// Whether producers' batches are taken (`append`); a follower's log takes only
    /// replicated ones.
    pub(super) producer_appends: bool,
    /// The core's budget this log's cache counts against, if it shares one.
    pub(super) cache_budget: Option<Rc<CacheBudget>>,
    /// Bytes appended since open, and the running total after each batch not yet below
    /// the high watermark: `(next_offset, bytes appended up to it)`.
    pub(super) appended_bytes: i64,
    pub(super) unpublished_bytes: VecDeque<(i64, i64)>,
    /// The next chunk of a sequential cold reader, read before it asks (see `read_ahead`).
    pub(super) read_ahead: Option<ReadAhead>,
    /// Truncations and cleaned-segment swaps so far: a read that began before one must not
    /// leave a read-ahead of positions that may since hold other offsets.
    pub(super) truncations: u64,
    /// The cleaner is swapping a cleaned segment in: retention and truncation wait.
    pub(super) cleaning: bool,
    /// The log start offset DeleteRecords asked for (persisted): the log starts at this or
    /// at its first segment's base, whichever is higher.
    pub(super) log_start_floor: i64,
}

impl<F: SegmentFile> Drop for LogState<F> {
    fn drop(&mut self) {
        self.free_clear();
        self.read_ahead_take();
        if let Some(budget) = &self.cache_budget {
            budget.release(self.cache_bytes);
        }
    }
}

impl<F: SegmentFile> LogState<F> {
    /// The cache changes only through these three, which keep `cache_bytes` and the
    /// core's budget in step.
    pub(super) fn cache_push(&mut self, batch: CachedBatch) {
        self.cache_bytes += batch.bytes.len();
        if let Some(budget) = &self.cache_budget {
            budget.add(batch.bytes.len());
        }
        self.cache.push_back(batch);
    }

    pub(super) fn cache_pop_front(&mut self) -> Option<CachedBatch> {
        let batch = self.cache.pop_front()?;
        self.uncount(&batch);
        Some(batch)
    }

    pub(super) fn cache_pop_back(&mut self) -> Option<CachedBatch> {
        let batch = self.cache.pop_back()?;
        self.uncount(&batch);
        Some(batch)
    }

    /// Recycled write buffers, kept between writes while the stream is busy (reusing one
    /// saves faulting in and clearing a fresh one), count against the core's budget like
    /// cached batches: one is kept only while the budget has room for it, so the buffers
    /// all of a core's partitions hold idle are bounded too.
    pub(super) fn free_push(&mut self, buffer: F::Buffer) {
        let bytes = buffer.as_ref().len();
        if let Some(budget) = &self.cache_budget {
            if budget.bytes() + bytes > budget.bytes_max() {
                return;
            }
            budget.add(bytes);
        }
        self.writer.free.push(buffer);
    }

    pub(super) fn free_pop(&mut self) -> Option<F::Buffer> {
        let buffer = self.writer.free.pop()?;
        if let Some(budget) = &self.cache_budget {
            budget.release(buffer.as_ref().len());
        }
        Some(buffer)
    }

    pub(super) fn free_clear(&mut self) {
        while self.free_pop().is_some() {}
    }

    /// The read-ahead changes only through these two, which charge its bytes to the core's
    /// budget while it is held (a new one replaces, and releases, the old).
    pub(super) fn read_ahead_set(&mut self, read_ahead: ReadAhead) {
        self.read_ahead_take();
        if let Some(budget) = &self.cache_budget {
            budget.add(read_ahead.want);
        }
        self.read_ahead = Some(read_ahead);
    }

    pub(super) fn read_ahead_take(&mut self) -> Option<ReadAhead> {
        let read_ahead = self.read_ahead.take()?;
        if let Some(budget) = &self.cache_budget {
            budget.release(read_ahead.want);
        }
        Some(read_ahead)
    }

    pub(super) fn uncount(&mut self, batch: &CachedBatch) {
        self.cache_bytes -= batch.bytes.len();
        if let Some(budget) = &self.cache_budget {
            budget.release(batch.bytes.len());
        }
    }

    pub(super) fn active(&mut self) -> &mut Segment<F> {
        self.segments
            .back_mut()
            .expect("a log always has an active segment")
    }

    pub(super) fn segment(&self, base_offset: i64) -> Option<&Segment<F>> {
        self.segments
            .iter()
            .find(|segment| segment.base_offset == base_offset)
    }

    pub(super) fn segment_mut(&mut self, base_offset: i64) -> Option<&mut Segment<F>> {
        self.segments
            .iter_mut()
            .find(|segment| segment.base_offset == base_offset)
    }

    pub(super) fn log_start_offset(&self) -> i64 {
        self.segments
            .front()
            .expect("a log always has a segment")
            .base_offset
            .max(self.log_start_floor)
    }

    /// Index of the segment holding `offset` (the last with base <= offset).
    pub(super) fn segment_index_for(&self, offset: i64) -> Option<usize> {
        let after = self
            .segments
            .partition_point(|segment| segment.base_offset <= offset);
        after.checked_sub(1)
    }

    /// Reads stay served after a write failed (a full disk, say): what is below the high
    /// watermark was written before the failure and is still on the device.
    pub(super) fn check_readable(&self) -> Result<()> {
        if self.closing {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    pub(super) fn check_usable(&self) -> Result<()> {
        if let Some(failure) = &self.failure {
            return Err(StorageError::LogFailed {
                reason: failure.to_string(),
            });
        }
        if self.closing {
            return Err(StorageError::Closed);
        }
        Ok(())
    }
}

pub(super) struct Inner<S: Storage> {
    pub(super) storage: S,
    pub(super) dir: PathBuf,
    /// Swapped whole when a topic config changes (`set_config`); readers hold their copy.
    pub(super) config: RefCell<Rc<LogConfig>>,
    pub(super) state: RefCell<LogState<S::File>>,
    pub(super) written: Watermark,
    pub(super) durable: Watermark,
    pub(super) flusher_wake: Event,
    /// Dirty bytes fell, the flusher finished a round, or exclusivity ended.
    pub(super) progress: Event,
    /// The recovery point last written (see `recovery_point`), and when.
    pub(super) recovery_point: Cell<RecoveryPoint>,
    pub(super) recovery_point_written: Cell<Instant>,
    /// This log's place in its core's cache budget, if it shares one.
    pub(super) budget_seat: std::cell::OnceCell<BudgetSeat>,
    /// Bytes of batches appended since open that are below the high watermark: what a
    /// long-poll Fetch waiting for `min_bytes` waits on.
    pub(super) visible_bytes: Watermark,
    /// The replication cap on what readers see (see `set_replication_high_watermark`).
    pub(super) replication_high_watermark: Cell<Option<i64>>,
    /// The first offset of each leader epoch here, and the sequence of its last slot write.
    pub(super) leader_epochs: RefCell<LeaderEpochs>,
    pub(super) leader_epochs_sequence: Cell<u64>,
    /// The cleaner's last pass cleaned the segments below this offset (persisted as
    /// `compact::CLEANER_OFFSET_FILE_NAME`; 0 for a log never cleaned).
    pub(super) cleaned_below: Cell<i64>,
    /// fdatasyncs of the active segment since open, and the time they took (for metrics).
    pub(super) syncs: Cell<u64>,
    pub(super) sync_time: Cell<std::time::Duration>,
}

impl<S: Storage> Inner<S> {
    /// The log's settings now (a topic config change replaces them between operations).
    pub(super) fn config(&self) -> Rc<LogConfig> {
        self.config.borrow().clone()
    }

    /// The offsets' order, checked wherever one of them moves: `log_start_offset <=
    /// high_watermark <= log_end_offset` and `durable_offset <= written_offset <=
    /// log_end_offset`. Each of these only grows, except where truncation moves the end down
    /// (and the marks with it); a violation is a bug that could serve or lose the wrong
    /// bytes, so it stops the core rather than go on.
    pub(super) fn assert_offsets_ordered(&self, state: &LogState<S::File>) {
        let (start, end) = (state.log_start_offset(), state.log_end_offset);
        let (durable, written) = (self.durable.get(), self.written.get());
        let high_watermark = self.high_watermark();
        assert!(
            start <= high_watermark && high_watermark <= end,
            "log start {start} <= high watermark {high_watermark} <= log end {end}"
        );
        assert!(
            durable <= written && written <= end,
            "durable {durable} <= written {written} <= log end {end}"
        );
    }

    /// What readers see: the local mark, capped by replication where a cap is set (never
    /// below the log start, so the offsets stay ordered).
    pub(super) fn high_watermark(&self) -> i64 {
        let local = self.local_high_watermark();
        match self.replication_high_watermark.get() {
            None => local,
            Some(cap) => {
                let start = self.state.try_borrow().map_or(0, |s| s.log_start_offset());
                local.min(cap.max(start))
            }
        }
    }

    pub(super) fn local_high_watermark(&self) -> i64 {
        match self.config().flush {
            FlushPolicy::Always => self.durable.get(),
            _ => self.written.get(),
        }
    }

    /// After the high watermark moved: counts the bytes now below it.
    pub(super) fn publish_visible_bytes(&self) {
        let high_watermark = self.high_watermark();
        let mut state = self.state.borrow_mut();
        let mut visible = None;
        while let Some(&(next_offset, bytes)) = state.unpublished_bytes.front() {
            if next_offset > high_watermark {
                break;
            }
            visible = Some(bytes);
            state.unpublished_bytes.pop_front();
        }
        drop(state);
        if let Some(bytes) = visible {
            self.visible_bytes.advance(bytes);
        }
    }

    /// After the cache grew or writes completed: marks this log used and takes the core
    /// back within its budget.
    pub(super) fn settle_budget(&self) {
        if let Some(seat) = self.budget_seat.get() {
            seat.touch();
            seat.budget.reclaim();
        }
    }
}

impl<S: Storage> CacheEvict for Inner<S> {
    fn evict_written(&self, bytes_wanted: usize) -> usize {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return 0;
        };
        // Speculative bytes go first: losing them costs one device read, not a cache miss
        // for every reader of the tail.
        let mut freed = state.read_ahead_take().map_or(0, |r| r.want);
        let written = self.written.get();
        while freed < bytes_wanted
            && state
                .cache
                .front()
                .is_some_and(|front| front.next_offset <= written)
        {
            freed += state.cache_pop_front().map_or(0, |b| b.bytes.len());
        }
        freed
    }
}
