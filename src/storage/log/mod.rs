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
//! with `base_offset` above the previous batch's last offset (equal to it + 1 unless
//! compaction removed the batches between, see `compact`). A segment other than the
//! last is sealed: truncated to its exact size, synced, with `.index`/`.timeindex` files
//! written. The last segment may end in zeros or a torn batch; recovery scans it, keeps the
//! valid prefix, cuts the rest and rebuilds its indexes.

mod cache;
mod compact;
mod delete_records;
mod epochs;
mod flusher;
mod offset_file;
mod read;
mod read_ahead;
mod recovery;
mod retention;
mod scan;
mod segment;
mod state;
mod writer;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tracing::warn;

use self::cache::{CachedBatch, evict_cache};
use self::flusher::flusher;
use self::recovery::{recover, write_recovery_point};
use self::state::{Inner, LogState};
use self::writer::{copy_into_writer, roll_segment};
use super::cache_budget::{CacheBudget, CacheEvict};
use super::config::{FlushPolicy, LogConfig};
use super::error::{Result, StorageError};
use super::io::{SegmentFile, Storage};
use super::recovery_point::RecoveryPoint;
use super::wait::{Event, Watermark};
use spindle_protocol::compression::recompress_batch;
use spindle_protocol::record_batch::{
    BatchError, RecordBatchHeader, set_base_offset, set_log_append_time,
    set_partition_leader_epoch, validate_framing, validate_produced_timestamps,
};
use spindle_protocol::record_validation::check_timestamp_bounds;

pub use self::compact::{CLEANED_SUFFIX, CLEANER_OFFSET_FILE_NAME, CompactionStats, SWAP_SUFFIX};
pub use self::delete_records::LOG_START_FILE_NAME;
pub use self::scan::{SegmentScan, scan_segment_file};
pub use self::segment::{
    INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, parse_segment_file_name, segment_file_name,
};

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
        let stored_epochs = epochs::read_leader_epochs(&storage, dir).await;
        let recovery_point = recovered.recovery_point.unwrap_or(RecoveryPoint {
            sequence: 0,
            offset: 0,
        });
        let log_end_offset = recovered
            .segments
            .back()
            .map(|s| s.next_offset)
            .unwrap_or(0);
        // Where the cleaner stopped, within what the segments hold.
        let cleaned_below = offset_file::read_offset_file(&storage, dir, CLEANER_OFFSET_FILE_NAME)
            .await?
            .unwrap_or(0)
            .clamp(0, log_end_offset);
        // DeleteRecords' start, if any, within what the segments hold.
        let log_start_floor = delete_records::read_log_start(&storage, dir)
            .await?
            .unwrap_or(0)
            .min(log_end_offset);
        let log_start_offset = recovered
            .segments
            .front()
            .map_or(0, |s| s.base_offset)
            .max(log_start_floor);
        let leader_epochs_sequence = stored_epochs.as_ref().map_or(0, |(sequence, _)| *sequence);
        let leader_epochs = epochs::opened_leader_epochs(
            stored_epochs.map(|(_, epochs)| epochs),
            log_start_offset,
            log_end_offset,
        );
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
            syncing: false,
            writes_in_flight: 0,
            leader_epoch: 0,
            producer_appends: true,
            cache_budget,
            appended_bytes: 0,
            unpublished_bytes: VecDeque::new(),
            read_ahead: None,
            truncations: 0,
            cleaning: false,
            log_start_floor,
        };
        let inner = Rc::new(Inner {
            storage,
            dir: dir.to_path_buf(),
            config: RefCell::new(Rc::new(config)),
            state: RefCell::new(state),
            written: Watermark::new(log_end_offset),
            durable: Watermark::new(log_end_offset),
            cleaned_below: Cell::new(cleaned_below),
            syncs: Cell::new(0),
            sync_time: Cell::new(Duration::ZERO),
            flusher_wake: Event::default(),
            progress: Event::default(),
            recovery_point: Cell::new(recovery_point),
            recovery_point_written: Cell::new(Instant::now()),
            budget_seat: std::cell::OnceCell::new(),
            visible_bytes: Watermark::new(0),
            replication_high_watermark: Cell::new(None),
            leader_epochs: RefCell::new(leader_epochs),
            leader_epochs_sequence: Cell::new(leader_epochs_sequence),
        });
        glommio::spawn_local(flusher(inner.clone())).detach();
        inner.assert_offsets_ordered(&inner.state.borrow());
        Ok(PartitionLog { inner })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn config(&self) -> Rc<LogConfig> {
        self.inner.config()
    }

    /// Replaces this open log's settings with `config`, the same broker defaults under a
    /// topic's changed overrides (AlterConfigs): an append, a read or a retention pass
    /// started before keeps the settings it began with; the next one sees `config`. The
    /// broker-wide settings the open log's buffers were sized by must not change.
    pub fn set_config(&self, config: LogConfig) -> Result<()> {
        config.validate().map_err(StorageError::InvalidConfig)?;
        let current = self.inner.config();
        assert!(
            config.write_buffer_bytes == current.write_buffer_bytes
                && config.flush == current.flush
                && config.preallocate_bytes == current.preallocate_bytes,
            "a topic config change never resizes an open log's buffers or its flush policy"
        );
        *self.inner.config.borrow_mut() = Rc::new(config);
        Ok(())
    }

    /// Whether producers' batches are taken (this replica leads) or only batches copied
    /// from the leader (it follows); never both. A replica that stops leading turns them off
    /// before anything else, so an append already past its leader check but still waiting
    /// (for buffer space, its turn) is refused at the moment it would write, never lands
    /// after the cut that makes the log a copy of the new leader's. Likewise a copied batch
    /// still waiting when the replica is promoted (its fetch answered by the old leader) is
    /// refused rather than written into the new leader's log. On by default: a log with
    /// one replica leads.
    pub fn set_producer_appends(&self, allowed: bool) {
        self.inner.state.borrow_mut().producer_appends = allowed;
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

    /// fdatasyncs of the active segment since the log was opened, and their total time.
    pub fn sync_stats(&self) -> (u64, Duration) {
        (self.inner.syncs.get(), self.inner.sync_time.get())
    }

    /// Offsets below this are visible to readers.
    pub fn high_watermark(&self) -> i64 {
        self.inner.high_watermark()
    }

    /// Offsets below this are written (or durable, as the flush policy has it) here: what
    /// a follower may copy. Above [`Self::high_watermark`] when replication caps readers.
    pub fn local_high_watermark(&self) -> i64 {
        self.inner.local_high_watermark()
    }

    /// Resolves `true` once [`Self::local_high_watermark`] reaches `offset` (a follower's
    /// long-poll), `false` if the log failed first.
    pub async fn wait_local_high_watermark(&self, offset: i64) -> bool {
        match self.inner.config().flush {
            FlushPolicy::Always => self.inner.durable.wait_for(offset).await,
            _ => self.inner.written.wait_for(offset).await,
        }
    }

    /// Caps what readers see at `high_watermark`: a replicated partition's leader sets
    /// the offset every in-sync replica holds, a follower the leader's. `None` lifts the
    /// cap (one replica). Long-polling readers are woken by a rise.
    pub fn set_replication_high_watermark(&self, high_watermark: Option<i64>) {
        self.inner.replication_high_watermark.set(high_watermark);
        self.inner.publish_visible_bytes();
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

    /// Bytes held (or being read) ahead of a sequential cold reader; 0 or one chunk.
    pub fn read_ahead_bytes(&self) -> usize {
        self.inner
            .state
            .borrow()
            .read_ahead
            .as_ref()
            .map_or(0, |read_ahead| read_ahead.want)
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
    pub async fn append(&self, batch: BytesMut) -> Result<AppendInfo> {
        // Cooperative point: a producer that never waits must still let the flusher submit
        // and retire writes once the task quota is spent.
        glommio::yield_if_needed().await;
        // One copy of the settings for the whole append, even if they change meanwhile.
        let config = self.inner.config();
        let (mut header, timestamps) =
            validate_produced_timestamps(&batch, config.validate_compressed_records)?;
        if !config.log_append_time {
            check_timestamp_bounds(
                timestamps,
                now_ms(),
                config.message_timestamp_before_max_ms,
                config.message_timestamp_after_max_ms,
            )?;
        }
        if config.cleanup_policy.compact {
            // The cleaner keeps records by key; Kafka refuses one without.
            spindle_protocol::compaction::check_keys(&batch)?;
        }
        let mut batch = batch;
        if let Some(codec) = config.compression_codec {
            // compression.type names a codec: the batch is stored with it, whatever the
            // producer used (Kafka recompresses on append too). Only topics that ask pay.
            if let Some(recompressed) = recompress_batch(&batch, codec)
                .map_err(|e| StorageError::InvalidBatch(BatchError::BadCompression(e)))?
            {
                batch = BytesMut::from(&recompressed[..]);
                header = RecordBatchHeader::decode(&batch)?;
            }
        }
        if config.log_append_time {
            set_log_append_time(&mut batch, now_ms());
            header = RecordBatchHeader::decode(&batch)?;
        }
        self.append_checked(batch, header, config, false).await
    }

    /// Appends one batch copied from the partition's leader, as the leader stored it: its
    /// offsets and leader epoch kept, so a follower's log is the leader's byte for byte.
    /// It must start at this log's end ([`StorageError::NotAtLogEnd`] otherwise), or past
    /// it in a compacted log, whose leader's cleaner may have removed the batches between,
    /// or in a log holding nothing, whose leader's log starts further on. The
    /// leader checked the records; the CRC and framing are checked again here.
    pub async fn append_replicated(&self, batch: BytesMut) -> Result<AppendInfo> {
        glommio::yield_if_needed().await;
        let config = self.inner.config();
        let header = validate_framing(&batch)?;
        if header.size_bytes() != batch.len() {
            return Err(StorageError::InvalidBatch(BatchError::BadLength {
                batch_length: header.batch_length,
                available: batch.len(),
            }));
        }
        if self.inner.state.borrow().producer_appends {
            return Err(StorageError::NotFollower);
        }
        self.note_replicated_epoch(header.partition_leader_epoch, header.base_offset)
            .await?;
        self.append_checked(batch, header, config, true).await
    }

    async fn append_checked(
        &self,
        mut batch: BytesMut,
        header: RecordBatchHeader,
        config: Rc<LogConfig>,
        replicated: bool,
    ) -> Result<AppendInfo> {
        let size_bytes = batch.len();
        if size_bytes > config.batch_bytes_max {
            return Err(StorageError::BatchTooLarge {
                size_bytes,
                size_bytes_max: config.batch_bytes_max,
            });
        }
        loop {
            let progress = self.inner.progress.listen();
            {
                let state = self.inner.state.borrow();
                state.check_usable()?;
                if !state.exclusive && state.dirty_bytes < config.dirty_bytes_max {
                    break;
                }
            }
            progress.await;
        }
        let inner = &*self.inner;
        let mut state = inner.state.borrow_mut();
        let mut base_offset = state.log_end_offset;
        if !replicated && !state.producer_appends {
            return Err(StorageError::NotLeader);
        }
        if replicated && state.producer_appends {
            return Err(StorageError::NotFollower);
        }
        if replicated && header.base_offset != base_offset {
            // A compacted leader's log has gaps where whole batches were cleaned away; a
            // follower copying that range takes the gap. So does a replica holding nothing
            // (new, or emptied by retention) whose leader's log starts past its end: the
            // leader sends from its log start, and the leader's start, raised here from
            // its fetch answers, hides the gap. Anywhere else a gap is a batch that is not
            // the next one.
            let empty = base_offset == state.log_start_offset()
                && header.base_offset - state.active().base_offset < i64::from(u32::MAX);
            if header.base_offset < base_offset || !(config.cleanup_policy.compact || empty) {
                return Err(StorageError::NotAtLogEnd {
                    base_offset: header.base_offset,
                    log_end_offset: base_offset,
                });
            }
            base_offset = header.base_offset;
        }
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let roll = {
            let active = state.active();
            active.size_bytes > 0
                && (active.size_bytes + size_bytes as u64 > config.segment_bytes
                    || now_ms() - active.created_ms >= config.segment_ms
                    || last_offset - active.base_offset > i64::from(u32::MAX) - 1)
        };
        if roll {
            roll_segment(&mut state, &inner.storage, &config);
        }
        if !replicated {
            set_base_offset(&mut batch, base_offset);
            let epoch = state.leader_epoch;
            if epoch >= 0 {
                set_partition_leader_epoch(&mut batch, epoch);
            }
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
            &config,
            &bytes,
            position,
            last_offset + 1,
        );
        state.log_end_offset = last_offset + 1;
        inner.assert_offsets_ordered(&state);
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
        evict_cache(&mut state, &config, inner.written.get());
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
        match self.inner.config().flush {
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
            state.read_ahead_take();
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
