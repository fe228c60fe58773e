//! The flusher: the one task per log that writes, syncs, creates, preallocates and seals
//! files (group commit: appends that arrive during a round share its write and fdatasync).
//! Runs on the owner core as a background task of the log.

use std::collections::VecDeque;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;

use super::cache::evict_cache;
use super::fail;
use super::recovery::{RECOVERY_POINT_INTERVAL, write_recovery_point};
use super::segment::{
    INDEX_SUFFIX, LOG_SUFFIX, PREALLOCATE_FIRST_BYTES, TIME_INDEX_SUFFIX, align_up,
    segment_file_name,
};
use super::state::{Inner, LogState};
use super::writer::{FlushOp, buffers_in_use_max, take_partial};
use crate::storage::config::BLOCK_BYTES;
use crate::storage::error::Result;
use crate::storage::{FlushPolicy, SegmentFile, Storage, StorageError};

/// The flusher: the only task that writes, syncs, creates or seals files of this log.
pub(super) async fn flusher<S: Storage>(inner: Rc<Inner<S>>) {
    let result = flusher_rounds(&inner).await;
    if let Err(error) = result {
        fail(&inner, error);
    }
    inner.state.borrow_mut().flusher_running = false;
    inner.progress.notify();
}

/// A direct write the flusher has issued and not yet retired.
pub(super) struct InFlight<B> {
    pub(super) future: Pin<Box<dyn Future<Output = std::io::Result<()>>>>,
    pub(super) done: bool,
    /// A padded partial block: the next write rewrites its last block, so nothing else may
    /// be in flight with it.
    pub(super) partial: bool,
    pub(super) segment_base: i64,
    pub(super) end_offset: i64,
    pub(super) end_position: u64,
    pub(super) dirty_bytes: usize,
    pub(super) buffer: Rc<B>,
}

/// The flusher's pipeline: full buffers are written as they fill, up to
/// `writes_in_flight_max` at once, and retired in order, each releasing its bytes to
/// waiting appenders; segment creation and sealing are barriers; the partial last block is
/// written only when nothing else is in flight (low load: at once; high load: when the
/// stream of full buffers pauses). A sync covers every retired write.
pub(super) async fn flusher_rounds<S: Storage>(inner: &Inner<S>) -> Result<()> {
    pub(super) type Buffer<S> = <<S as Storage>::File as SegmentFile>::Buffer;
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
            if partial_in_flight || in_flight.len() >= inner.config().writes_in_flight_max {
                break;
            }
            let (op, partial) = {
                let mut state = inner.state.borrow_mut();
                match state.ops.front() {
                    Some(FlushOp::Write { .. }) => (state.ops.pop_front(), false),
                    None if in_flight.is_empty() && state.writer.has_new_bytes() => {
                        take_partial(&mut state, &inner.storage, &inner.config(), true);
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
            !state.exclusive && sync_due(inner, &state)
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
            match inner.config().flush {
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
pub(super) fn poll_in_flight<B>(
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
pub(super) fn retire<S: Storage>(
    inner: &Inner<S>,
    in_flight: &mut VecDeque<InFlight<<S::File as SegmentFile>::Buffer>>,
) -> bool {
    if !in_flight.front().is_some_and(|write| write.done) {
        return false;
    }
    let mut state = inner.state.borrow_mut();
    let mut written = inner.written.get();
    let free_max = buffers_in_use_max(&inner.config());
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
            && buffer.as_ref().len() == inner.config().write_buffer_bytes
            && state.writer.free.len() < free_max
        {
            state.free_push(buffer);
        }
    }
    inner.written.advance(written);
    inner.assert_offsets_ordered(&state);
    evict_cache(&mut state, &inner.config(), written);
    drop(state);
    inner.publish_visible_bytes();
    inner.settle_budget();
    inner.progress.notify();
    true
}

/// The file of `segment_base`, with blocks reserved up to at least `end`.
pub(super) async fn ensure_preallocated<S: Storage>(
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
    if end > preallocated && inner.config().preallocate_bytes > 0 {
        // Steps double with the file (a busy partition soon reserves the largest step at a
        // time; an idle one holds little on disk).
        let step = preallocated
            .max(PREALLOCATE_FIRST_BYTES)
            .min(inner.config().preallocate_bytes);
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

pub(super) fn sync_due<S: Storage>(inner: &Inner<S>, state: &LogState<S::File>) -> bool {
    let written = inner.written.get();
    if written <= inner.durable.get() {
        return false;
    }
    if state.sync_requested > inner.durable.get() || state.closing {
        return true;
    }
    let config = inner.config();
    // Offsets count records: this many written since the last sync (flush.messages).
    if config
        .flush_messages
        .is_some_and(|messages| (written - inner.durable.get()) as u64 >= messages)
    {
        return true;
    }
    match config.flush {
        FlushPolicy::Always => true,
        FlushPolicy::Interval { interval, bytes } => {
            state.unsynced_bytes >= bytes || state.last_sync.elapsed() >= interval
        }
        FlushPolicy::Never => false,
    }
}

/// fdatasync of the active segment: sealed segments were synced when sealed, so after this
/// everything written is durable.
pub(super) async fn sync_active<S: Storage>(inner: &Inner<S>) -> Result<()> {
    let (file, target) = {
        let mut state = inner.state.borrow_mut();
        state.syncing = true;
        let file = state.segments.iter().rev().find_map(|s| s.file.clone());
        (file, inner.written.get())
    };
    if let Some(file) = file {
        let started = Instant::now();
        let synced = file.fdatasync().await;
        inner.syncs.set(inner.syncs.get() + 1);
        inner
            .sync_time
            .set(inner.sync_time.get() + started.elapsed());
        if let Err(e) = synced {
            inner.state.borrow_mut().syncing = false;
            inner.progress.notify();
            return Err(StorageError::io("fdatasync", e));
        }
    }
    {
        let mut state = inner.state.borrow_mut();
        state.syncing = false;
        state.unsynced_bytes = 0;
        state.last_sync = Instant::now();
    }
    inner.durable.advance(target);
    inner.assert_offsets_ordered(&inner.state.borrow());
    inner.publish_visible_bytes();
    Ok(())
}

pub(super) async fn create_segment_file<S: Storage>(
    inner: &Inner<S>,
    segment_base: i64,
) -> Result<()> {
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
        .config()
        .preallocate_bytes
        .min(PREALLOCATE_FIRST_BYTES)
        .min(align_up(inner.config().segment_bytes));
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

pub(super) async fn seal_segment<S: Storage>(inner: &Inner<S>, segment_base: i64) -> Result<()> {
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
pub(super) async fn write_whole_file<S: Storage>(
    storage: &S,
    path: &Path,
    bytes: &[u8],
) -> Result<()> {
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

pub(super) async fn read_whole_file<S: Storage>(storage: &S, path: &Path) -> Option<Bytes> {
    let file = storage.open(path, false).await.ok()?;
    let size = file.file_size().await.ok()?;
    let bytes = file.read_at(0, size as usize).await.ok()?;
    (bytes.len() as u64 == size).then_some(bytes)
}

pub(super) async fn remove_segment_files<S: Storage>(
    storage: &S,
    dir: &Path,
    base_offset: i64,
) -> Result<()> {
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove_if_present(storage, &dir.join(segment_file_name(base_offset, suffix))).await?;
    }
    Ok(())
}

pub(super) async fn remove_if_present<S: Storage>(storage: &S, path: &Path) -> Result<()> {
    match storage.remove(path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(StorageError::io("remove file", error))
        }
        _ => Ok(()),
    }
}
