//! `PartitionLog`: one partition's Kafka-style log. Owned by one core and used only from
//! that core's glommio executor; shared between the tasks of that executor through `Rc`,
//! never locked.
//!
//! Append path: `append` validates the batch (CRC checked once), assigns offsets, copies it
//! into the current direct-I/O write buffer (the one copy) and keeps the frozen batch in a
//! memory cache for readers. A flusher task, one per log, owns all device I/O: it takes every
//! buffer filled since its last round, writes them (full buffers concurrently; a partial last
//! block is padded with zeros and rewritten next round), then `fdatasync`s when the flush
//! policy or a waiting caller asks. Appends that arrive while a round is in flight go into
//! the next one, so N concurrent appenders share one write and one fdatasync (group commit).
//!
//! Offsets, each only growing (asserted where they change):
//! `log_start_offset <= durable_offset <= written_offset <= log_end_offset`, and the high
//! watermark (what readers see) is `durable_offset` under `FlushPolicy::Always`, otherwise
//! `written_offset`. Nothing below the high watermark is ever lost to a process crash; nothing
//! below `durable_offset` to a power loss.
//!
//! On-disk invariants: segment files hold whole batches back to back from position 0, each
//! with `base_offset` equal to the previous batch's last offset + 1. A segment other than the
//! last is sealed: truncated to its exact size, synced, with `.index`/`.timeindex` files
//! written. The last segment may end in zeros or a torn batch; recovery scans it, keeps the
//! valid prefix, cuts the rest and rebuilds its indexes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tracing::{debug, error, warn};

use super::cache_budget::{BudgetSeat, CacheBudget, CacheEvict};
use super::config::{BLOCK_BYTES, FlushPolicy, LogConfig};
use super::copy::copy_for_device;
use super::error::{Result, StorageError};
use super::index::{OffsetIndex, TimeIndex};
use super::io::{IoBuffer, SegmentFile, Storage};
use super::recovery_point::{RECOVERY_POINT_FILE_NAMES, RecoveryPoint};
use super::resync::find_next_batch;
use super::wait::{Event, Watermark};
use spindle_protocol::record_batch::{
    self, RecordBatchHeader, record_timestamps, set_base_offset, set_partition_leader_epoch,
    validate_framing, validate_produced_with,
};

/// Buffer that carries the partial last block after a low-load write (see `take_partial`).
const CARRY_BUFFER_BYTES: usize = 64 << 10;

/// Bytes read per device request when scanning a segment (recovery, cold reads).
const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// Blocks a new segment file reserves. Each later reservation doubles the file's, up to
/// `LogConfig::preallocate_bytes` at a time: 10,000 idle partitions hold 625 MiB of
/// preallocated disk, not 625 GiB, and a busy one reaches 64 MiB steps within a few writes.
const PREALLOCATE_FIRST_BYTES: u64 = 64 << 10;
/// Most time between a sync and the recovery point recording it (one small write and
/// fdatasync each time): data older than this is never cut as a torn tail.
const RECOVERY_POINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `00000000000000000042.log` for base offset 42, as Kafka names segments.
pub fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// The base offset a segment file name encodes, if it is one of ours with `suffix`.
pub fn parse_segment_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn align_down(value: u64) -> u64 {
    value - value % BLOCK_BYTES
}

fn align_up(value: u64) -> u64 {
    value.div_ceil(BLOCK_BYTES) * BLOCK_BYTES
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_start_offset: i64,
}

/// A timestamp lookup's answer (ListOffsets by timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

struct Segment<F> {
    base_offset: i64,
    /// `None` until the flusher has created the file (reads meanwhile hit the cache).
    file: Option<Rc<F>>,
    /// Bytes appended (logical end).
    size_bytes: u64,
    /// Bytes whose write to the file has completed.
    written_bytes: u64,
    /// Blocks reserved in the file.
    preallocated_bytes: u64,
    next_offset: i64,
    max_timestamp: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_index_entry: u64,
    created_ms: i64,
    /// No more appends go here.
    sealed: bool,
    /// Sealed, cut to size, synced and indexed on disk: safe to delete by retention.
    seal_complete: bool,
    /// Offset ranges `[from, to)` whose durable bytes failed their checks at recovery:
    /// kept on disk, never served, never handed out again.
    damaged: Vec<(i64, i64)>,
}

impl<F> Segment<F> {
    fn new(base_offset: i64) -> Segment<F> {
        Segment {
            base_offset,
            file: None,
            size_bytes: 0,
            written_bytes: 0,
            preallocated_bytes: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_index: OffsetIndex::new(),
            time_index: TimeIndex::new(),
            bytes_since_index_entry: 0,
            created_ms: now_ms(),
            sealed: false,
            seal_complete: false,
            damaged: Vec::new(),
        }
    }

    fn relative(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset;
        debug_assert!((0..=u32::MAX as i64).contains(&relative));
        relative as u32
    }

    /// Records a batch that starts at `position` in the indexes.
    fn index_batch(&mut self, header: &RecordBatchHeader, position: u64, interval_bytes: u64) {
        if position > 0 && self.bytes_since_index_entry >= interval_bytes {
            self.offset_index
                .push(self.relative(header.base_offset), position as u32);
            if self.max_timestamp >= 0 {
                // Every batch before this one has a timestamp of at most max_timestamp.
                self.time_index
                    .maybe_push(self.max_timestamp, self.relative(header.base_offset - 1));
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += header.size_bytes() as u64;
        self.size_bytes = position + header.size_bytes() as u64;
        self.next_offset = header.next_offset();
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
    }

    /// The final time-index entry a sealed segment carries: its newest timestamp.
    fn close_time_index(&mut self) {
        if self.max_timestamp >= 0 && self.next_offset > self.base_offset {
            let last = self.relative(self.next_offset - 1);
            self.time_index.maybe_push(self.max_timestamp, last);
        }
    }
}

/// Where a timestamp search starts within one segment.
struct SearchStart<F> {
    file: Option<Rc<F>>,
    segment_base: i64,
    position: u64,
    written_bytes: u64,
    start_offset: i64,
}

struct CachedBatch {
    base_offset: i64,
    next_offset: i64,
    bytes: Bytes,
}

/// What the flusher does, in order.
enum FlushOp<B> {
    Create {
        segment_base: i64,
    },
    Write {
        segment_base: i64,
        buffer: Rc<B>,
        position: u64,
        /// Offset after the last batch that ends inside this write.
        end_offset: i64,
        /// Segment position after that batch.
        end_position: u64,
        /// Newly appended bytes this write carries (for backpressure accounting).
        dirty_bytes: usize,
    },
    Seal {
        segment_base: i64,
    },
}

/// The direct-I/O write buffer being filled for the active segment.
struct Writer<B> {
    buffer: Option<B>,
    /// Segment position of `buffer[0]`; always block-aligned.
    position: u64,
    /// Valid bytes in the buffer.
    len: usize,
    /// Leading bytes already on the device (the partial block carried over).
    clean_len: usize,
    /// Full-size buffers back from the device, reused before allocating. Holding as many as
    /// a busy stream keeps in use matters: a buffer given back to the allocator is unmapped
    /// (4 MiB is above malloc's mmap threshold), and its replacement costs a page fault and
    /// a page clear per 4 KiB on first touch: 7% of the executor's time in the append
    /// benchmark. Emptied when the stream pauses.
    free: Vec<B>,
}

impl<B: IoBuffer> Writer<B> {
    fn has_new_bytes(&self) -> bool {
        self.buffer.is_some() && self.len > self.clean_len
    }
}

struct LogState<F: SegmentFile> {
    segments: VecDeque<Segment<F>>,
    log_end_offset: i64,
    cache: VecDeque<CachedBatch>,
    cache_bytes: usize,
    writer: Writer<F::Buffer>,
    ops: VecDeque<FlushOp<F::Buffer>>,
    dirty_bytes: usize,
    /// A caller waits for durability up to here.
    sync_requested: i64,
    unsynced_bytes: u64,
    last_sync: Instant,
    failure: Option<StorageError>,
    closing: bool,
    flusher_running: bool,
    /// Appends wait while set (truncation has the log).
    exclusive: bool,
    /// Direct writes the flusher has in flight (it needs waking on append only when this
    /// is zero, or when a full buffer was queued).
    writes_in_flight: usize,
    leader_epoch: i32,
    /// The core's budget this log's cache counts against, if it shares one.
    cache_budget: Option<Rc<CacheBudget>>,
    /// Bytes appended since open, and the running total after each batch not yet below
    /// the high watermark: `(next_offset, bytes appended up to it)`.
    appended_bytes: i64,
    unpublished_bytes: VecDeque<(i64, i64)>,
}

impl<F: SegmentFile> Drop for LogState<F> {
    fn drop(&mut self) {
        self.free_clear();
        if let Some(budget) = &self.cache_budget {
            budget.release(self.cache_bytes);
        }
    }
}

impl<F: SegmentFile> LogState<F> {
    /// The cache changes only through these three, which keep `cache_bytes` and the
    /// core's budget in step.
    fn cache_push(&mut self, batch: CachedBatch) {
        self.cache_bytes += batch.bytes.len();
        if let Some(budget) = &self.cache_budget {
            budget.add(batch.bytes.len());
        }
        self.cache.push_back(batch);
    }

    fn cache_pop_front(&mut self) -> Option<CachedBatch> {
        let batch = self.cache.pop_front()?;
        self.uncount(&batch);
        Some(batch)
    }

    fn cache_pop_back(&mut self) -> Option<CachedBatch> {
        let batch = self.cache.pop_back()?;
        self.uncount(&batch);
        Some(batch)
    }

    /// Recycled write buffers, kept between writes while the stream is busy (reusing one
    /// saves faulting in and clearing a fresh one), count against the core's budget like
    /// cached batches: one is kept only while the budget has room for it, so the buffers
    /// all of a core's partitions hold idle are bounded too.
    fn free_push(&mut self, buffer: F::Buffer) {
        let bytes = buffer.as_ref().len();
        if let Some(budget) = &self.cache_budget {
            if budget.bytes() + bytes > budget.bytes_max() {
                return;
            }
            budget.add(bytes);
        }
        self.writer.free.push(buffer);
    }

    fn free_pop(&mut self) -> Option<F::Buffer> {
        let buffer = self.writer.free.pop()?;
        if let Some(budget) = &self.cache_budget {
            budget.release(buffer.as_ref().len());
        }
        Some(buffer)
    }

    fn free_clear(&mut self) {
        while self.free_pop().is_some() {}
    }

    fn uncount(&mut self, batch: &CachedBatch) {
        self.cache_bytes -= batch.bytes.len();
        if let Some(budget) = &self.cache_budget {
            budget.release(batch.bytes.len());
        }
    }

    fn active(&mut self) -> &mut Segment<F> {
        self.segments
            .back_mut()
            .expect("a log always has an active segment")
    }

    fn segment(&self, base_offset: i64) -> Option<&Segment<F>> {
        self.segments
            .iter()
            .find(|segment| segment.base_offset == base_offset)
    }

    fn segment_mut(&mut self, base_offset: i64) -> Option<&mut Segment<F>> {
        self.segments
            .iter_mut()
            .find(|segment| segment.base_offset == base_offset)
    }

    fn log_start_offset(&self) -> i64 {
        self.segments
            .front()
            .expect("a log always has a segment")
            .base_offset
    }

    /// Index of the segment holding `offset` (the last with base <= offset).
    fn segment_index_for(&self, offset: i64) -> Option<usize> {
        let after = self
            .segments
            .partition_point(|segment| segment.base_offset <= offset);
        after.checked_sub(1)
    }

    /// Reads stay served after a write failed (a full disk, say): what is below the high
    /// watermark was written before the failure and is still on the device.
    fn check_readable(&self) -> Result<()> {
        if self.closing {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
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

struct Inner<S: Storage> {
    storage: S,
    dir: PathBuf,
    config: LogConfig,
    state: RefCell<LogState<S::File>>,
    written: Watermark,
    durable: Watermark,
    flusher_wake: Event,
    /// Dirty bytes fell, the flusher finished a round, or exclusivity ended.
    progress: Event,
    /// The recovery point last written (see `recovery_point`), and when.
    recovery_point: Cell<RecoveryPoint>,
    recovery_point_written: Cell<Instant>,
    /// This log's place in its core's cache budget, if it shares one.
    budget_seat: std::cell::OnceCell<BudgetSeat>,
    /// Bytes of batches appended since open that are below the high watermark: what a
    /// long-poll Fetch waiting for `min_bytes` waits on.
    visible_bytes: Watermark,
}

impl<S: Storage> Inner<S> {
    fn high_watermark(&self) -> i64 {
        match self.config.flush {
            FlushPolicy::Always => self.durable.get(),
            _ => self.written.get(),
        }
    }

    /// After the high watermark moved: counts the bytes now below it.
    fn publish_visible_bytes(&self) {
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
    fn settle_budget(&self) {
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
        let written = self.written.get();
        let mut freed = 0;
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

/// A partition's log. Cloning shares it (same core only).
pub struct PartitionLog<S: Storage> {
    inner: Rc<Inner<S>>,
}

impl<S: Storage> Clone for PartitionLog<S> {
    fn clone(&self) -> Self {
        PartitionLog {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Storage> PartitionLog<S> {
    /// Opens (recovering) or creates the log in `dir` and starts its flusher on the current
    /// executor. Must run inside a glommio executor that went through
    /// `runtime::prime_direct_io`.
    pub async fn open(storage: S, dir: &Path, config: LogConfig) -> Result<PartitionLog<S>> {
        PartitionLog::open_sharing(storage, dir, config, None).await
    }

    /// [`PartitionLog::open`] for a log whose cache counts against `budget`, shared by the
    /// logs of one core.
    pub async fn open_with_cache_budget(
        storage: S,
        dir: &Path,
        config: LogConfig,
        budget: Rc<CacheBudget>,
    ) -> Result<PartitionLog<S>>
    where
        S: 'static,
    {
        let log = PartitionLog::open_sharing(storage, dir, config, Some(budget.clone())).await?;
        let member: Rc<dyn CacheEvict> = log.inner.clone();
        let seat = budget.join(Rc::downgrade(&member));
        let _ = log.inner.budget_seat.set(seat);
        Ok(log)
    }

    async fn open_sharing(
        storage: S,
        dir: &Path,
        config: LogConfig,
        cache_budget: Option<Rc<CacheBudget>>,
    ) -> Result<PartitionLog<S>> {
        config.validate().map_err(StorageError::InvalidConfig)?;
        storage
            .create_dir_all(dir)
            .map_err(|e| StorageError::io("create log dir", e))?;
        let recovered = recover(&storage, dir, &config).await?;
        let recovery_point = recovered.recovery_point.unwrap_or(RecoveryPoint {
            sequence: 0,
            offset: 0,
        });
        let log_end_offset = recovered
            .segments
            .back()
            .map(|s| s.next_offset)
            .unwrap_or(0);
        let state = LogState {
            segments: recovered.segments,
            log_end_offset,
            cache: VecDeque::new(),
            cache_bytes: 0,
            writer: recovered.writer,
            ops: recovered.ops,
            dirty_bytes: 0,
            sync_requested: log_end_offset,
            unsynced_bytes: 0,
            last_sync: Instant::now(),
            failure: None,
            closing: false,
            flusher_running: true,
            exclusive: false,
            writes_in_flight: 0,
            leader_epoch: 0,
            cache_budget,
            appended_bytes: 0,
            unpublished_bytes: VecDeque::new(),
        };
        let inner = Rc::new(Inner {
            storage,
            dir: dir.to_path_buf(),
            config,
            state: RefCell::new(state),
            written: Watermark::new(log_end_offset),
            durable: Watermark::new(log_end_offset),
            flusher_wake: Event::default(),
            progress: Event::default(),
            recovery_point: Cell::new(recovery_point),
            recovery_point_written: Cell::new(Instant::now()),
            budget_seat: std::cell::OnceCell::new(),
            visible_bytes: Watermark::new(0),
        });
        glommio::spawn_local(flusher(inner.clone())).detach();
        Ok(PartitionLog { inner })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// The epoch written into each appended batch's `partition_leader_epoch`.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.inner.state.borrow_mut().leader_epoch = epoch;
    }

    pub fn log_start_offset(&self) -> i64 {
        self.inner.state.borrow().log_start_offset()
    }

    /// Next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.inner.state.borrow().log_end_offset
    }

    /// Offsets below this have been written to the device.
    pub fn written_offset(&self) -> i64 {
        self.inner.written.get()
    }

    /// Offsets below this have been made durable by fdatasync.
    pub fn durable_offset(&self) -> i64 {
        self.inner.durable.get()
    }

    /// Offsets below this are visible to readers.
    pub fn high_watermark(&self) -> i64 {
        self.inner.high_watermark()
    }

    /// Bytes of the batches appended since the log was opened that readers can see now: a
    /// counter that grows with visible data, for long-poll fetches with a `min_bytes`.
    pub fn visible_bytes(&self) -> i64 {
        self.inner.visible_bytes.get()
    }

    /// Resolves `true` once [`Self::visible_bytes`] reaches `bytes`, `false` if the log
    /// failed first.
    pub async fn wait_visible_bytes(&self, bytes: i64) -> bool {
        self.inner.visible_bytes.wait_for(bytes).await
    }

    /// Bytes in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner
            .state
            .borrow()
            .segments
            .iter()
            .map(|s| s.size_bytes)
            .sum()
    }

    /// Whether a write or sync failed: the log takes no more appends (reads go on) until it
    /// is opened again.
    pub fn is_failed(&self) -> bool {
        self.inner.state.borrow().failure.is_some()
    }

    /// Bytes of recent batches this log keeps in memory.
    pub fn cached_bytes(&self) -> usize {
        self.inner.state.borrow().cache_bytes
    }

    pub fn segment_count(&self) -> usize {
        self.inner.state.borrow().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.inner
            .state
            .borrow()
            .segments
            .iter()
            .map(|s| s.base_offset)
            .collect()
    }

    /// Appends one producer batch, assigning its offsets. Waits only for buffer space
    /// (backpressure); use [`Self::wait_written`] or [`Self::wait_durable`] to wait for the
    /// device.
    pub async fn append(&self, mut batch: BytesMut) -> Result<AppendInfo> {
        // Cooperative point: a producer that never waits must still let the flusher submit
        // and retire writes once the task quota is spent.
        glommio::yield_if_needed().await;
        let header = validate_produced_with(&batch, self.inner.config.validate_compressed_records)?;
        let size_bytes = batch.len();
        if size_bytes > self.inner.config.batch_bytes_max {
            return Err(StorageError::BatchTooLarge {
                size_bytes,
                size_bytes_max: self.inner.config.batch_bytes_max,
            });
        }
        loop {
            let progress = self.inner.progress.listen();
            {
                let state = self.inner.state.borrow();
                state.check_usable()?;
                if !state.exclusive && state.dirty_bytes < self.inner.config.dirty_bytes_max {
                    break;
                }
            }
            progress.await;
        }
        let inner = &*self.inner;
        let config = &inner.config;
        let mut state = inner.state.borrow_mut();
        let base_offset = state.log_end_offset;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let roll = {
            let active = state.active();
            active.size_bytes > 0
                && (active.size_bytes + size_bytes as u64 > config.segment_bytes
                    || now_ms() - active.created_ms >= config.segment_ms
                    || last_offset - active.base_offset > i64::from(u32::MAX) - 1)
        };
        if roll {
            roll_segment(&mut state, &inner.storage, config);
        }
        set_base_offset(&mut batch, base_offset);
        let epoch = state.leader_epoch;
        if epoch >= 0 {
            set_partition_leader_epoch(&mut batch, epoch);
        }
        let header = RecordBatchHeader {
            base_offset,
            ..header
        };
        let bytes = batch.freeze();
        let ops_before = state.ops.len();
        let position = state.active().size_bytes;
        state
            .active()
            .index_batch(&header, position, config.index_interval_bytes);
        copy_into_writer(
            &mut state,
            &inner.storage,
            config,
            &bytes,
            position,
            last_offset + 1,
        );
        state.log_end_offset = last_offset + 1;
        state.dirty_bytes += size_bytes;
        state.appended_bytes += size_bytes as i64;
        let appended_bytes = state.appended_bytes;
        state
            .unpublished_bytes
            .push_back((last_offset + 1, appended_bytes));
        state.cache_push(CachedBatch {
            base_offset,
            next_offset: last_offset + 1,
            bytes,
        });
        evict_cache(&mut state, config, inner.written.get());
        let log_start_offset = state.log_start_offset();
        // An idle flusher writes the partial block at once (low latency); a busy one picks
        // new bytes up when a write finishes, so only a newly filled buffer needs a wake.
        let wake = state.writes_in_flight == 0 || state.ops.len() > ops_before;
        drop(state);
        inner.settle_budget();
        if wake {
            inner.flusher_wake.notify();
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_start_offset,
        })
    }

    /// Waits until every offset below `offset` has been written to the device (acks=1).
    pub async fn wait_written(&self, offset: i64) -> Result<()> {
        if self.inner.written.wait_for(offset).await {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// Waits until every offset below `offset` is durable (fdatasync), asking for a sync
    /// whatever the flush policy. Concurrent callers share one fdatasync.
    pub async fn wait_durable(&self, offset: i64) -> Result<()> {
        {
            let mut state = self.inner.state.borrow_mut();
            state.check_usable()?;
            state.sync_requested = state.sync_requested.max(offset);
        }
        self.inner.flusher_wake.notify();
        if self.inner.durable.wait_for(offset).await {
            Ok(())
        } else {
            Err(self.failure())
        }
    }

    /// Waits until everything appended so far is written (and, under `Always`, durable).
    pub async fn flush(&self) -> Result<()> {
        let end = self.log_end_offset();
        match self.inner.config.flush {
            FlushPolicy::Always => self.wait_durable(end).await,
            _ => self.wait_written(end).await,
        }
    }

    fn failure(&self) -> StorageError {
        let state = self.inner.state.borrow();
        match &state.failure {
            Some(failure) => StorageError::LogFailed {
                reason: failure.to_string(),
            },
            None => StorageError::Closed,
        }
    }

    /// Whole batches from the one containing `from_offset`, up to `max_bytes` (at least one
    /// batch if any is visible, as Kafka does) and never past the high watermark. Recent
    /// batches come from memory; older ones from the device, CRC-checked.
    pub async fn read(&self, from_offset: i64, max_bytes: usize) -> Result<Vec<Bytes>> {
        if let Some(seat) = self.inner.budget_seat.get() {
            seat.touch();
        }
        let high_watermark = self.high_watermark();
        let (file, segment_base, start_position, limit_position) = {
            let state = self.inner.state.borrow();
            state.check_readable()?;
            let log_start_offset = state.log_start_offset();
            if from_offset < log_start_offset || from_offset > high_watermark {
                return Err(StorageError::OffsetOutOfRange {
                    offset: from_offset,
                    log_start_offset,
                    high_watermark,
                });
            }
            if from_offset == high_watermark {
                return Ok(Vec::new());
            }
            if state
                .cache
                .front()
                .is_some_and(|front| front.base_offset <= from_offset)
            {
                return Ok(read_cache(
                    &state.cache,
                    from_offset,
                    max_bytes,
                    high_watermark,
                ));
            }
            let index = state
                .segment_index_for(from_offset)
                .expect("offset >= log start");
            let segment = &state.segments[index];
            if let Some(&(from, to)) = segment
                .damaged
                .iter()
                .find(|&&(from, to)| from <= from_offset && from_offset < to)
            {
                return Err(StorageError::CorruptOnDisk {
                    segment_base_offset: segment.base_offset,
                    position: 0,
                    reason: format!("offsets {from}..{to} are damaged on disk"),
                });
            }
            let file = segment
                .file
                .clone()
                .expect("uncached data has been written");
            let (_, position) = segment.offset_index.lookup(segment.relative(from_offset));
            (
                file,
                segment.base_offset,
                u64::from(position),
                segment.written_bytes,
            )
        };
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut start_position = start_position;
        loop {
            // Shared with the cut-batch check: whether anything has been taken yet.
            let taken_any = std::cell::Cell::new(false);
            // The offset after the last intact batch seen, where damage would begin.
            let seen_end = std::cell::Cell::new(segment_base);
            let end = scan_segment_while(
                &*file,
                segment_base,
                start_position,
                limit_position,
                max_bytes.saturating_add(self.inner.config.index_interval_bytes as usize),
                // A batch the read cut off costs a whole further device read: worth it only
                // while nothing has been taken (a fetch must return at least one batch) or
                // to get past batches before `from_offset`. Otherwise the fetch ends before
                // it and the next one starts there, so a sequential reader pays one device
                // read per fetch.
                |header| match header {
                    Some(header) => {
                        header.base_offset < high_watermark
                            && (header.next_offset() <= from_offset || !taken_any.get())
                    }
                    None => !taken_any.get(),
                },
                |_, header, bytes| {
                    seen_end.set(header.next_offset());
                    if header.base_offset >= high_watermark {
                        return false;
                    }
                    if header.next_offset() <= from_offset {
                        return true;
                    }
                    if !out.is_empty() && total + bytes.len() > max_bytes {
                        return false;
                    }
                    total += bytes.len();
                    out.push(bytes);
                    taken_any.set(true);
                    total < max_bytes
                },
            )
            .await?;
            let Some(reason) = end.error else {
                return Ok(out);
            };
            // Serve what lies before damage; a read starting in it gets the error.
            if !out.is_empty() {
                return Ok(out);
            }
            // Damage between where the index let us start and `from_offset`: read on from
            // the next intact batch if `from_offset` is not inside the damage.
            let resume =
                find_next_batch(&*file, end.position + 1, limit_position, seen_end.get()).await?;
            match resume {
                Some((at, header)) if header.base_offset <= from_offset => start_position = at,
                _ => {
                    return Err(StorageError::CorruptOnDisk {
                        segment_base_offset: segment_base,
                        position: end.position,
                        reason,
                    });
                }
            }
        }
    }

    /// The largest record timestamp the log holds, -1 if none (ListOffsets -3 asks for the
    /// first record carrying it).
    pub fn max_timestamp(&self) -> i64 {
        let state = self.inner.state.borrow();
        state
            .segments
            .iter()
            .map(|segment| segment.max_timestamp)
            .max()
            .unwrap_or(-1)
    }

    /// The first offset whose record timestamp is at least `timestamp` (Kafka's ListOffsets
    /// by timestamp), with that record's timestamp; `None` if no visible record qualifies.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        let high_watermark = self.high_watermark();
        let candidates: Vec<SearchStart<S::File>> = {
            let state = self.inner.state.borrow();
            state.check_readable()?;
            state
                .segments
                .iter()
                .filter(|segment| segment.max_timestamp >= timestamp)
                .map(|segment| {
                    let start_offset = match segment.time_index.lookup(timestamp) {
                        Some(relative) => segment.base_offset + i64::from(relative) + 1,
                        None => segment.base_offset,
                    };
                    let (_, position) = segment.offset_index.lookup(segment.relative(start_offset));
                    SearchStart {
                        file: segment.file.clone(),
                        segment_base: segment.base_offset,
                        position: u64::from(position),
                        written_bytes: segment.written_bytes,
                        start_offset,
                    }
                })
                .collect()
        };
        let matches = |batch: &Bytes, header: &RecordBatchHeader| -> Option<TimestampOffset> {
            if header.max_timestamp < timestamp {
                return None;
            }
            let exact = record_timestamps(batch).and_then(|records| {
                records
                    .into_iter()
                    .find(|&(offset, ts)| ts >= timestamp && offset < high_watermark)
                    .map(|(offset, timestamp)| TimestampOffset { offset, timestamp })
            });
            Some(exact.unwrap_or(TimestampOffset {
                offset: header.base_offset,
                timestamp: header.max_timestamp,
            }))
        };
        for SearchStart {
            file,
            segment_base,
            position,
            written_bytes,
            start_offset,
        } in candidates
        {
            // Unwritten tail of the segment: in the cache.
            let mut found = None;
            if let Some(file) = file {
                let end = scan_segment(
                    &*file,
                    segment_base,
                    position,
                    written_bytes,
                    SCAN_CHUNK_BYTES,
                    |_, header, bytes| {
                        if header.base_offset >= high_watermark {
                            return false;
                        }
                        if header.next_offset() <= start_offset {
                            return true;
                        }
                        found = matches(&bytes, header);
                        found.is_none()
                    },
                )
                .await?;
                if let Some(reason) = end.error {
                    return Err(StorageError::CorruptOnDisk {
                        segment_base_offset: segment_base,
                        position: end.position,
                        reason,
                    });
                }
            }
            if found.is_none() {
                let state = self.inner.state.borrow();
                for cached in state.cache.iter() {
                    if cached.base_offset < segment_base || cached.base_offset < start_offset {
                        continue;
                    }
                    if cached.base_offset >= high_watermark {
                        break;
                    }
                    let header = RecordBatchHeader::decode(&cached.bytes)
                        .expect("cached batches were validated on append");
                    found = matches(&cached.bytes, &header);
                    if found.is_some() {
                        break;
                    }
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Rolls the active segment if it is older than `segment_ms` at `now_ms` (appends also
    /// check, with the wall clock). Returns whether it rolled.
    pub fn roll_if_due(&self, now_ms: i64) -> bool {
        let mut state = self.inner.state.borrow_mut();
        let due = {
            let active = state.active();
            active.size_bytes > 0 && now_ms - active.created_ms >= self.inner.config.segment_ms
        };
        if due && state.check_usable().is_ok() && !state.exclusive {
            roll_segment(&mut state, &self.inner.storage, &self.inner.config);
            drop(state);
            self.inner.flusher_wake.notify();
        }
        due
    }

    /// Deletes whole old segments beyond `retention_bytes` or older than `retention_ms`
    /// (by their newest timestamp, relative to `now_ms`). The active segment is never
    /// deleted. Returns the number of segments deleted.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize> {
        let config = &self.inner.config;
        let doomed: Vec<Segment<S::File>> = {
            let mut state = self.inner.state.borrow_mut();
            state.check_usable()?;
            if state.exclusive {
                return Ok(0);
            }
            let mut total: u64 = state.segments.iter().map(|s| s.size_bytes).sum();
            let mut doomed = Vec::new();
            while state.segments.len() > 1 {
                let oldest = state.segments.front().expect("len > 1");
                if !oldest.seal_complete {
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
            let log_start_offset = state.log_start_offset();
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

    async fn truncate_exclusive(&self, offset: i64) -> Result<i64> {
        let inner = &*self.inner;
        // Let the flusher finish everything queued so the disk holds all appended bytes.
        loop {
            let progress = inner.progress.listen();
            {
                let state = inner.state.borrow();
                state.check_usable()?;
                if state.ops.is_empty()
                    && !state.writer.has_new_bytes()
                    && inner.written.get() == state.log_end_offset
                {
                    break;
                }
            }
            inner.flusher_wake.notify();
            progress.await;
        }
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        let (keep_base, doomed) = {
            let mut state = inner.state.borrow_mut();
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
            recover_active(&inner.storage, &inner.config, keep_base, file, 0).await?;
        let new_end = segment.next_offset;
        let mut state = inner.state.borrow_mut();
        state.segments.pop_back();
        state.segments.push_back(segment);
        state.writer = writer;
        state.log_end_offset = new_end;
        state.sync_requested = state.sync_requested.min(new_end);
        while state.cache.back().is_some_and(|c| c.next_offset > new_end) {
            state.cache_pop_back();
        }
        state
            .unpublished_bytes
            .retain(|&(next_offset, _)| next_offset <= new_end);
        inner.written.reset(new_end);
        inner.durable.reset(new_end);
        debug!(dir = %inner.dir.display(), offset, new_end, cut_position, "truncated");
        Ok(new_end)
    }

    /// Stops the log: waits for everything appended to be written and synced, then stops
    /// the flusher. Later calls fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        {
            let state = self.inner.state.borrow();
            if let Some(failure) = &state.failure {
                return Err(StorageError::LogFailed {
                    reason: failure.to_string(),
                });
            }
        }
        let end = self.log_end_offset();
        self.wait_durable(end).await?;
        self.inner.state.borrow_mut().closing = true;
        self.inner.flusher_wake.notify();
        loop {
            let progress = self.inner.progress.listen();
            if !self.inner.state.borrow().flusher_running {
                break;
            }
            progress.await;
        }
        // A closed log serves nothing: give its cache back to the core.
        {
            let mut state = self.inner.state.borrow_mut();
            while state.cache_pop_front().is_some() {}
        }
        // Leave the active segment at its exact size, without the preallocated tail, as a
        // clean shutdown should (recovery would cut it anyway).
        let (file, size_bytes) = {
            let state = self.inner.state.borrow();
            let active = state
                .segments
                .back()
                .expect("a log always has an active segment");
            (active.file.clone(), active.size_bytes)
        };
        if let Some(file) = file {
            file.truncate(size_bytes)
                .await
                .map_err(|e| StorageError::io("truncate", e))?;
            file.fdatasync()
                .await
                .map_err(|e| StorageError::io("fdatasync", e))?;
        }
        // Everything is durable: the next open need not treat any of it as a tail.
        write_recovery_point(&self.inner, end).await
    }

    /// Closes the log and removes its files and directory (topic deletion).
    pub async fn delete(self) -> Result<()> {
        if self.inner.state.borrow().failure.is_none() {
            // A failed log cannot flush; deleting it anyway is what the caller wants.
            let _ = self.close().await;
        }
        let inner = &*self.inner;
        inner.state.borrow_mut().closing = true;
        inner.flusher_wake.notify();
        let names = inner
            .storage
            .list(&inner.dir)
            .map_err(|e| StorageError::io("list", e))?;
        for name in names {
            inner
                .storage
                .remove(&inner.dir.join(&name))
                .await
                .map_err(|e| StorageError::io("remove", e))?;
        }
        inner
            .storage
            .remove_dir(&inner.dir)
            .map_err(|e| StorageError::io("remove dir", e))?;
        Ok(())
    }

    fn fail(&self, error: StorageError) {
        fail(&self.inner, error);
    }
}

fn fail<S: Storage>(inner: &Inner<S>, error: StorageError) {
    warn!(dir = %inner.dir.display(), %error, "partition log stopped");
    {
        let mut state = inner.state.borrow_mut();
        if state.failure.is_none() {
            state.failure = Some(error);
        }
    }
    inner.written.fail();
    inner.durable.fail();
    inner.visible_bytes.fail();
    inner.progress.notify();
    inner.flusher_wake.notify();
}

fn new_writer<B>() -> Writer<B> {
    Writer {
        buffer: None,
        position: 0,
        len: 0,
        clean_len: 0,
        free: Vec::new(),
    }
}

fn read_cache(
    cache: &VecDeque<CachedBatch>,
    from_offset: i64,
    max_bytes: usize,
    high_watermark: i64,
) -> Vec<Bytes> {
    let start = cache.partition_point(|batch| batch.next_offset <= from_offset);
    let mut out = Vec::new();
    let mut total = 0usize;
    for batch in cache.iter().skip(start) {
        if batch.base_offset >= high_watermark
            || (!out.is_empty() && total + batch.bytes.len() > max_bytes)
        {
            break;
        }
        total += batch.bytes.len();
        out.push(batch.bytes.clone());
        if total >= max_bytes {
            break;
        }
    }
    out
}

/// Drops the oldest cached batches over the budget, but only those already written:
/// unwritten batches are served from nowhere else.
fn evict_cache<F: SegmentFile>(state: &mut LogState<F>, config: &LogConfig, written: i64) {
    while state.cache_bytes > config.cache_bytes_max {
        match state.cache.front() {
            Some(front) if front.next_offset <= written => {
                state.cache_pop_front();
            }
            _ => break,
        }
    }
}

/// Copies an appended batch into the write buffers, queueing each buffer that fills.
fn copy_into_writer<F: SegmentFile, S: Storage<File = F>>(
    state: &mut LogState<F>,
    storage: &S,
    config: &LogConfig,
    bytes: &[u8],
    start_position: u64,
    end_offset: i64,
) {
    let segment_base = state.active().base_offset;
    // Before this batch: what a buffer that fills mid-batch can claim to hold whole.
    let completed_offset = state.log_end_offset;
    let completed_position = start_position;
    let end_position = start_position + bytes.len() as u64;
    let mut rest = bytes;
    while !rest.is_empty() {
        let writer = &mut state.writer;
        if writer.buffer.is_none() {
            let recycled = state.free_pop();
            state.writer.buffer =
                Some(recycled.unwrap_or_else(|| storage.alloc_buffer(config.write_buffer_bytes)));
        }
        let writer = &mut state.writer;
        let buffer = writer.buffer.as_mut().expect("just set");
        // A carry buffer (after a partial write) is smaller than a full one: when it fills,
        // it is written as is and the next buffer is full size.
        let capacity = buffer.as_ref().len();
        let take = rest.len().min(capacity - writer.len);
        copy_for_device(
            &mut buffer.as_mut()[writer.len..writer.len + take],
            &rest[..take],
        );
        writer.len += take;
        rest = &rest[take..];
        if writer.len == capacity {
            let (op_end_offset, op_end_position) = if rest.is_empty() {
                (end_offset, end_position)
            } else {
                (completed_offset, completed_position)
            };
            let buffer = writer.buffer.take().expect("full buffer");
            let dirty_bytes = writer.len - writer.clean_len;
            let position = writer.position;
            writer.position += capacity as u64;
            writer.len = 0;
            writer.clean_len = 0;
            state.ops.push_back(FlushOp::Write {
                segment_base,
                buffer: Rc::new(buffer),
                position,
                end_offset: op_end_offset,
                end_position: op_end_position,
                dirty_bytes,
            });
        }
    }
}

/// The most full-size write buffers one log can hold at once: the dirty bytes they carry are
/// bounded by `dirty_bytes_max`, plus the one being filled and one a batch may spill into.
fn buffers_in_use_max(config: &LogConfig) -> usize {
    config.dirty_bytes_max.div_ceil(config.write_buffer_bytes) + 2
}

/// Size of the buffer that carries a partial last block after a low-load write.
fn carry_buffer_bytes(config: &LogConfig) -> usize {
    config.write_buffer_bytes.min(CARRY_BUFFER_BYTES)
}

/// Queues the unwritten part of the current buffer, padded to a block with zeros. With
/// `carry_tail`, the partial last block is copied into a fresh buffer so the next round
/// rewrites it with what follows.
fn take_partial<F: SegmentFile, S: Storage<File = F>>(
    state: &mut LogState<F>,
    storage: &S,
    config: &LogConfig,
    carry_tail: bool,
) {
    if !state.writer.has_new_bytes() {
        if !carry_tail {
            state.writer.buffer = None;
        }
        return;
    }
    let segment_base = state.active().base_offset;
    let end_offset = state.log_end_offset;
    let end_position = state.active().size_bytes;
    let writer = &mut state.writer;
    let mut buffer = writer.buffer.take().expect("has new bytes");
    let len = writer.len;
    let padded = align_up(len as u64) as usize;
    buffer.as_mut()[len..padded].fill(0);
    let tail_start = align_down(len as u64) as usize;
    if carry_tail {
        // Written at low load (nothing else was in flight): carry the tail in a small
        // buffer, so an idle partition holds kilobytes, not a full write buffer.
        let mut next = storage.alloc_buffer(carry_buffer_bytes(config));
        next.as_mut()[..len - tail_start].copy_from_slice(&buffer.as_ref()[tail_start..len]);
        writer.buffer = Some(next);
    }
    let dirty_bytes = len - writer.clean_len;
    let position = writer.position;
    writer.position += tail_start as u64;
    writer.len = len - tail_start;
    writer.clean_len = writer.len;
    buffer.trim_to(padded);
    state.ops.push_back(FlushOp::Write {
        segment_base,
        buffer: Rc::new(buffer),
        position,
        end_offset,
        end_position,
        dirty_bytes,
    });
}

/// Seals the active segment and starts a new one at the log end. The file work (final
/// write, truncate, sync, index files, creating the next file) is queued for the flusher in
/// that order, so a new segment file exists on disk only after its predecessor is sealed.
fn roll_segment<F: SegmentFile, S: Storage<File = F>>(
    state: &mut LogState<F>,
    storage: &S,
    config: &LogConfig,
) {
    take_partial(state, storage, config, false);
    let new_base = state.log_end_offset;
    let active = state.active();
    active.sealed = true;
    active.close_time_index();
    let old_base = active.base_offset;
    state.ops.push_back(FlushOp::Seal {
        segment_base: old_base,
    });
    state.ops.push_back(FlushOp::Create {
        segment_base: new_base,
    });
    state.segments.push_back(Segment::new(new_base));
    state.writer.buffer = None;
    state.writer.position = 0;
    state.writer.len = 0;
    state.writer.clean_len = 0;
}

async fn remove_segment_files<S: Storage>(storage: &S, dir: &Path, base_offset: i64) -> Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove_if_present(storage, &dir.join(segment_file_name(base_offset, suffix))).await?;
    }
    Ok(())
}

async fn remove_if_present<S: Storage>(storage: &S, path: &Path) -> Result<()> {
    match storage.remove(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(StorageError::io("remove file", error))
        }
        _ => Ok(()),
    }
}

/// The flusher: the only task that writes, syncs, creates or seals files of this log.
async fn flusher<S: Storage>(inner: Rc<Inner<S>>) {
    let result = flusher_rounds(&inner).await;
    if let Err(error) = result {
        fail(&inner, error);
    }
    inner.state.borrow_mut().flusher_running = false;
    inner.progress.notify();
}

/// A direct write the flusher has issued and not yet retired.
struct InFlight<B> {
    future: Pin<Box<dyn Future<Output = std::io::Result<()>>>>,
    done: bool,
    /// A padded partial block: the next write rewrites its last block, so nothing else may
    /// be in flight with it.
    partial: bool,
    segment_base: i64,
    end_offset: i64,
    end_position: u64,
    dirty_bytes: usize,
    buffer: Rc<B>,
}

/// The flusher's pipeline: full buffers are written as they fill, up to
/// `writes_in_flight_max` at once, and retired in order, each releasing its bytes to
/// waiting appenders; segment creation and sealing are barriers; the partial last block is
/// written only when nothing else is in flight (low load: at once; high load: when the
/// stream of full buffers pauses). A sync covers every retired write.
async fn flusher_rounds<S: Storage>(inner: &Inner<S>) -> Result<()> {
    type Buffer<S> = <<S as Storage>::File as SegmentFile>::Buffer;
    let mut in_flight: VecDeque<InFlight<Buffer<S>>> = VecDeque::new();
    loop {
        let wake = inner.flusher_wake.listen();
        let mut progressed = false;
        // Barriers: create or seal a segment once every earlier write has landed. A barrier
        // stays at the head of the queue until it is done, so an empty queue means nothing
        // is pending or running (truncation relies on that).
        while in_flight.is_empty() {
            let barrier = match inner.state.borrow().ops.front() {
                Some(&FlushOp::Create { segment_base }) => Some((true, segment_base)),
                Some(&FlushOp::Seal { segment_base }) => Some((false, segment_base)),
                _ => None,
            };
            match barrier {
                Some((true, segment_base)) => create_segment_file(inner, segment_base).await?,
                Some((false, segment_base)) => seal_segment(inner, segment_base).await?,
                None => break,
            }
            inner.state.borrow_mut().ops.pop_front();
            inner.progress.notify();
            progressed = true;
        }
        // Issue writes.
        loop {
            let partial_in_flight = in_flight.iter().any(|write| write.partial);
            if partial_in_flight || in_flight.len() >= inner.config.writes_in_flight_max {
                break;
            }
            let (op, partial) = {
                let mut state = inner.state.borrow_mut();
                match state.ops.front() {
                    Some(FlushOp::Write { .. }) => (state.ops.pop_front(), false),
                    None if in_flight.is_empty() && state.writer.has_new_bytes() => {
                        take_partial(&mut state, &inner.storage, &inner.config, true);
                        (state.ops.pop_front(), true)
                    }
                    _ => (None, false),
                }
            };
            let Some(FlushOp::Write {
                segment_base,
                buffer,
                position,
                end_offset,
                end_position,
                dirty_bytes,
            }) = op
            else {
                break;
            };
            let file = ensure_preallocated(
                inner,
                segment_base,
                position + buffer.as_ref().as_ref().len() as u64,
            )
            .await?;
            let write_buffer = buffer.clone();
            // Its own task: glommio 0.9's I/O futures keep a new clone of the polling
            // task's waker on every poll until they complete, and the flusher re-polls all
            // its writes whenever anything wakes it. Under a stream of small appends that
            // reached 32,767 clones, overflowed the task's reference count and panicked
            // the core. A spawned write is polled only when its own I/O wakes it; the
            // flusher awaits the task, whose single awaiter slot is replaced, not grown.
            in_flight.push_back(InFlight {
                future: Box::pin(glommio::spawn_local(async move {
                    file.write_all_at(write_buffer, position).await
                })),
                done: false,
                partial,
                segment_base,
                end_offset,
                end_position,
                dirty_bytes,
                buffer,
            });
            progressed = true;
        }
        // Submit new writes and collect finished ones without blocking.
        if poll_in_flight(&mut in_flight, None)? {
            progressed = true;
        }
        if retire(inner, &mut in_flight) {
            progressed = true;
        }
        inner.state.borrow_mut().writes_in_flight = in_flight.len();
        let sync = {
            let state = inner.state.borrow();
            sync_due(inner, &state)
        };
        if sync {
            sync_active(inner).await?;
            inner.progress.notify();
            progressed = true;
            if inner.recovery_point_written.get().elapsed() >= RECOVERY_POINT_INTERVAL {
                write_recovery_point(inner, inner.durable.get()).await?;
            }
        }
        if progressed {
            continue;
        }
        // Nothing to do until a write finishes, an appender wakes us or the interval ends.
        let deadline = {
            let mut state = inner.state.borrow_mut();
            if state.failure.is_some() {
                return Ok(());
            }
            let idle =
                in_flight.is_empty() && state.ops.is_empty() && !state.writer.has_new_bytes();
            if state.closing && idle {
                return Ok(());
            }
            if idle {
                // The stream paused: give recycled write buffers back rather than hold
                // megabytes for a partition that may stay quiet.
                state.free_clear();
            }
            match inner.config.flush {
                // Only when `sync_due` would then say yes: a deadline that passes with
                // nothing to sync (bytes rewritten, no new offset written) made this loop
                // spin on an expired timer, both cores at 100% and nothing served.
                FlushPolicy::Interval { interval, .. }
                    if state.unsynced_bytes > 0 && inner.written.get() > inner.durable.get() =>
                {
                    Some(state.last_sync + interval)
                }
                _ => None,
            }
        };
        let mut wake = std::pin::pin!(wake);
        let mut sleep = deadline.map(|deadline| {
            Box::pin(glommio::timer::sleep(
                deadline.saturating_duration_since(Instant::now()),
            ))
        });
        std::future::poll_fn(|cx| {
            match poll_in_flight(&mut in_flight, Some(cx)) {
                Ok(true) => return Poll::Ready(Ok(())),
                // A failed write stops the log; its future is finished and must not be
                // polled again.
                Err(error) => return Poll::Ready(Err(error)),
                Ok(false) => {}
            }
            if wake.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            if let Some(sleep) = sleep.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            Poll::Pending
        })
        .await?;
    }
}

/// Polls every unfinished write once; true if any finished. The first error stops the log
/// (an in-flight direct write cannot be recalled, and a failed one leaves a hole).
fn poll_in_flight<B>(
    in_flight: &mut VecDeque<InFlight<B>>,
    cx: Option<&mut std::task::Context<'_>>,
) -> Result<bool> {
    let noop = std::task::Waker::noop();
    let mut noop_cx = std::task::Context::from_waker(noop);
    let cx = cx.unwrap_or(&mut noop_cx);
    let mut finished = false;
    for write in in_flight.iter_mut().filter(|write| !write.done) {
        if let Poll::Ready(result) = write.future.as_mut().poll(cx) {
            result.map_err(|e| StorageError::io("write", e))?;
            write.done = true;
            finished = true;
        }
    }
    Ok(finished)
}

/// Retires finished writes in order: advances the written offset, releases dirty bytes
/// to appenders and recycles full buffers. True if any retired.
fn retire<S: Storage>(
    inner: &Inner<S>,
    in_flight: &mut VecDeque<InFlight<<S::File as SegmentFile>::Buffer>>,
) -> bool {
    if !in_flight.front().is_some_and(|write| write.done) {
        return false;
    }
    let mut state = inner.state.borrow_mut();
    let mut written = inner.written.get();
    let free_max = buffers_in_use_max(&inner.config);
    while in_flight.front().is_some_and(|write| write.done) {
        let write = in_flight.pop_front().expect("checked");
        drop(write.future);
        if let Some(segment) = state.segment_mut(write.segment_base) {
            segment.written_bytes = segment.written_bytes.max(write.end_position);
            assert!(
                segment.written_bytes <= segment.size_bytes,
                "written past the appended end"
            );
        }
        written = written.max(write.end_offset);
        state.dirty_bytes -= write.dirty_bytes;
        state.unsynced_bytes += write.dirty_bytes as u64;
        if let Ok(buffer) = Rc::try_unwrap(write.buffer)
            && buffer.as_ref().len() == inner.config.write_buffer_bytes
            && state.writer.free.len() < free_max
        {
            state.free_push(buffer);
        }
    }
    assert!(
        written <= state.log_end_offset,
        "written may not pass the log end"
    );
    inner.written.advance(written);
    evict_cache(&mut state, &inner.config, written);
    drop(state);
    inner.publish_visible_bytes();
    inner.settle_budget();
    inner.progress.notify();
    true
}

/// The file of `segment_base`, with blocks reserved up to at least `end`.
async fn ensure_preallocated<S: Storage>(
    inner: &Inner<S>,
    segment_base: i64,
    end: u64,
) -> Result<Rc<S::File>> {
    let (file, preallocated) = {
        let state = inner.state.borrow();
        let segment = state
            .segment(segment_base)
            .expect("segment of a queued write");
        (
            segment.file.clone().expect("created before written"),
            segment.preallocated_bytes,
        )
    };
    if end > preallocated && inner.config.preallocate_bytes > 0 {
        // Steps double with the file (a busy partition soon reserves the largest step at a
        // time; an idle one holds little on disk).
        let step = preallocated
            .max(PREALLOCATE_FIRST_BYTES)
            .min(inner.config.preallocate_bytes);
        let target = (preallocated + step).max(end);
        file.pre_allocate(target)
            .await
            .map_err(|e| StorageError::io("preallocate", e))?;
        if let Some(segment) = inner.state.borrow_mut().segment_mut(segment_base) {
            segment.preallocated_bytes = target;
        }
    }
    Ok(file)
}

fn sync_due<S: Storage>(inner: &Inner<S>, state: &LogState<S::File>) -> bool {
    let written = inner.written.get();
    if written <= inner.durable.get() {
        return false;
    }
    if state.sync_requested > inner.durable.get() || state.closing {
        return true;
    }
    match inner.config.flush {
        FlushPolicy::Always => true,
        FlushPolicy::Interval { interval, bytes } => {
            state.unsynced_bytes >= bytes || state.last_sync.elapsed() >= interval
        }
        FlushPolicy::Never => false,
    }
}

/// fdatasync of the active segment: sealed segments were synced when sealed, so after this
/// everything written is durable.
async fn sync_active<S: Storage>(inner: &Inner<S>) -> Result<()> {
    let (file, target) = {
        let state = inner.state.borrow();
        let file = state.segments.iter().rev().find_map(|s| s.file.clone());
        (file, inner.written.get())
    };
    if let Some(file) = file {
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync", e))?;
    }
    {
        let mut state = inner.state.borrow_mut();
        state.unsynced_bytes = 0;
        state.last_sync = Instant::now();
    }
    assert!(
        target <= inner.written.get(),
        "durable may not pass written"
    );
    inner.durable.advance(target);
    inner.publish_visible_bytes();
    Ok(())
}

async fn create_segment_file<S: Storage>(inner: &Inner<S>, segment_base: i64) -> Result<()> {
    let path = inner.dir.join(segment_file_name(segment_base, LOG_SUFFIX));
    let file = inner
        .storage
        .open(&path, true)
        .await
        .map_err(|e| StorageError::io("create segment", e))?;
    assert!(
        BLOCK_BYTES.is_multiple_of(file.alignment()),
        "device alignment exceeds BLOCK_BYTES"
    );
    let preallocate = inner
        .config
        .preallocate_bytes
        .min(PREALLOCATE_FIRST_BYTES)
        .min(align_up(inner.config.segment_bytes));
    if preallocate > 0 {
        file.pre_allocate(preallocate)
            .await
            .map_err(|e| StorageError::io("preallocate", e))?;
    }
    inner
        .storage
        .sync_dir(&inner.dir)
        .await
        .map_err(|e| StorageError::io("sync log dir", e))?;
    let mut state = inner.state.borrow_mut();
    if let Some(segment) = state.segment_mut(segment_base) {
        segment.file = Some(Rc::new(file));
        segment.preallocated_bytes = preallocate;
    }
    Ok(())
}

async fn seal_segment<S: Storage>(inner: &Inner<S>, segment_base: i64) -> Result<()> {
    let (file, size_bytes, offset_index, time_index) = {
        let state = inner.state.borrow();
        let segment = state
            .segment(segment_base)
            .expect("sealing a known segment");
        (
            segment.file.clone(),
            segment.size_bytes,
            segment.offset_index.encode(),
            segment.time_index.encode(),
        )
    };
    if let Some(file) = &file {
        file.truncate(size_bytes)
            .await
            .map_err(|e| StorageError::io("truncate sealed segment", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync sealed segment", e))?;
    }
    write_whole_file(
        &inner.storage,
        &inner
            .dir
            .join(segment_file_name(segment_base, INDEX_SUFFIX)),
        &offset_index,
    )
    .await?;
    write_whole_file(
        &inner.storage,
        &inner
            .dir
            .join(segment_file_name(segment_base, TIME_INDEX_SUFFIX)),
        &time_index,
    )
    .await?;
    inner
        .storage
        .sync_dir(&inner.dir)
        .await
        .map_err(|e| StorageError::io("sync log dir", e))?;
    if let Some(segment) = inner.state.borrow_mut().segment_mut(segment_base) {
        segment.seal_complete = true;
    }
    Ok(())
}

/// Writes a small file (an index) in one aligned write, cuts it to size and syncs it.
async fn write_whole_file<S: Storage>(storage: &S, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage
        .open(path, true)
        .await
        .map_err(|e| StorageError::io("create index", e))?;
    if !bytes.is_empty() {
        let padded = align_up(bytes.len() as u64) as usize;
        let mut buffer = storage.alloc_buffer(padded);
        buffer.as_mut()[..bytes.len()].copy_from_slice(bytes);
        buffer.as_mut()[bytes.len()..].fill(0);
        file.write_all_at(Rc::new(buffer), 0)
            .await
            .map_err(|e| StorageError::io("write index", e))?;
    }
    file.truncate(bytes.len() as u64)
        .await
        .map_err(|e| StorageError::io("truncate index", e))?;
    file.fdatasync()
        .await
        .map_err(|e| StorageError::io("fdatasync index", e))?;
    Ok(())
}

async fn read_whole_file<S: Storage>(storage: &S, path: &Path) -> Option<Bytes> {
    let file = storage.open(path, false).await.ok()?;
    let size = file.file_size().await.ok()?;
    let bytes = file.read_at(0, size as usize).await.ok()?;
    (bytes.len() as u64 == size).then_some(bytes)
}

/// How a scan of a segment ended.
struct ScanEnd {
    /// Position after the last valid batch visited (or where the visitor stopped).
    position: u64,
    /// Why the scan stopped before `limit`, if the bytes there were not a valid batch.
    error: Option<String>,
}

/// Reads batches of a segment from `start` up to `limit`, validating each (framing, CRC and
/// offset continuity) and handing it to `visit` until it returns false. Chunks of
/// `chunk_bytes` are read at a time; a batch larger than a chunk is re-read whole.
async fn scan_segment<F: SegmentFile>(
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
async fn scan_segment_while<F: SegmentFile>(
    file: &F,
    segment_base: i64,
    start: u64,
    limit: u64,
    chunk_bytes: usize,
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
        let want = ((limit - position) as usize).min(read_at_least);
        read_at_least = chunk_bytes;
        let chunk = file
            .read_at(position, want)
            .await
            .map_err(|e| StorageError::io("read segment", e))?;
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
            match expected_offset {
                Some(expected) if header.base_offset != expected => {
                    return Ok(stop(format!(
                        "batch base_offset {} where {expected} was expected",
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

struct Recovered<F: SegmentFile> {
    segments: VecDeque<Segment<F>>,
    writer: Writer<F::Buffer>,
    ops: VecDeque<FlushOp<F::Buffer>>,
    recovery_point: Option<RecoveryPoint>,
}

/// The newest recovery point the partition directory holds, if any slot is intact.
async fn read_recovery_point<S: Storage>(storage: &S, dir: &Path) -> Option<RecoveryPoint> {
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
async fn write_recovery_point<S: Storage>(inner: &Inner<S>, offset: i64) -> Result<()> {
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

/// Scans a segment from its start up to `limit`, indexing every batch into `segment`.
/// Where a batch below `durable_below` fails its checks, those bytes are durable data, not
/// a torn tail: the damage is recorded (and logged loudly) and the scan resumes at the next
/// intact batch. Returns how the scan finally ended: cleanly, at a failure at or after
/// `durable_below` (a torn tail), or at damage it could not get past.
async fn scan_recovering<F: SegmentFile>(
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

/// Opens what is in `dir`: sealed segments with their index files (rebuilt if missing or
/// stale) and the last segment scanned batch by batch, cut after its last valid batch.
async fn recover<S: Storage>(
    storage: &S,
    dir: &Path,
    config: &LogConfig,
) -> Result<Recovered<S::File>> {
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

async fn recover_sealed<S: Storage>(
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
async fn recover_active<S: Storage>(
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
