//! Log compaction (Kafka's log cleaner, for `cleanup.policy=compact`): the sealed segments
//! keep only the latest record of each key, and tombstones go once `delete.retention.ms`
//! has passed. Offsets never change: a kept record keeps its offset and its batch's bounds
//! (see `spindle_protocol::compaction`), so gaps appear where records went. Owner core
//! only; the shard runs it from its low-share cleaner queue, one log at a time.
//!
//! A pass: map every key of the sealed segments below the high watermark to its latest
//! offset (up to `cleaner_dedupe_bytes` of map; the segments the map covers whole are the
//! ones cleaned), then rewrite those segments oldest first. Oldest first matters: a crash
//! between two segments then never leaves a tombstone removed while an older value of its
//! key survives.
//!
//! Each segment is swapped in crash-safely. Its cleaned copy is written as
//! `BASE.log.cleaned` and synced; renaming it to `BASE.log.swap` is the commit point; then
//! the old index files go and `BASE.log.swap` replaces `BASE.log`. Recovery removes any
//! `.cleaned` file (an uncommitted copy: the old segment stands) and finishes any `.swap`
//! (a committed one), so a crash at any point leaves the old segment or the new one, never
//! a mix. A segment left with no records is removed, like retention removes one.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::path::Path;
use std::rc::Rc;

use tracing::{debug, warn};

use super::flusher::{remove_if_present, remove_segment_files, write_whole_file};
use super::offset_file::write_offset_file;
use super::scan::scan_segment;
use super::segment::{
    INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX, align_down, align_up,
    parse_segment_file_name, segment_file_name,
};
use super::state::{Inner, LogState};
use crate::storage::error::Result;
use crate::storage::{PartitionLog, SegmentFile, Storage, StorageError};
use spindle_protocol::RecordBatchHeader;
use spindle_protocol::compaction::{
    KeyedRecord, Retained, empty_batch, for_each_keyed_record, retain_records,
};

/// A cleaned segment's copy while it is written (uncommitted).
pub const CLEANED_SUFFIX: &str = ".log.cleaned";
/// A cleaned segment's copy once committed, until it replaces the segment.
pub const SWAP_SUFFIX: &str = ".log.swap";

/// Where the cleaner's last pass stopped, in the partition's directory (Kafka keeps a
/// `cleaner-offset-checkpoint` per log directory), so a restart does not find the whole
/// log dirty and clean it all again.
pub const CLEANER_OFFSET_FILE_NAME: &str = "cleaner-offset";

/// Bytes of a map entry: a 128-bit key hash and an offset, plus the table's overhead.
const MAP_ENTRY_BYTES: usize = 32;

/// Bytes of cleaned output gathered before they are written (one direct write each).
const OUTPUT_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of a segment the cleaner takes in one step before it lets the core's other task
/// queues run: decompressing, hashing and filtering them takes well under a millisecond,
/// so a producer's request never waits behind the cleaner for longer.
const STEP_BYTES: usize = 128 << 10;

/// Lets every other task queue of the core run before the cleaner's next step (the
/// executor would otherwise keep running it for its whole task quota).
async fn step_aside() {
    glommio::executor().yield_task_queue_now().await;
}

/// What one cleaning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments the key map covered, and so were cleaned (or found clean already).
    pub segments_cleaned: usize,
    /// Segments left with no record, removed.
    pub segments_removed: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Distinct keys the map held.
    pub keys: usize,
}

/// A key's identity in the map: two independent 64-bit SipHashes. As Kafka's cleaner (which
/// keeps an MD5 per key), a collision would drop a record; at 2^-128 per pair it is never
/// expected.
fn key_hash(key: &[u8]) -> u128 {
    let mut first = DefaultHasher::new();
    first.write(key);
    let mut second = DefaultHasher::new();
    second.write_u8(0x5a);
    second.write(key);
    (u128::from(first.finish()) << 64) | u128::from(second.finish())
}

/// A sealed segment a pass may clean, as it was when the pass began.
struct Candidate<F> {
    base_offset: i64,
    file: Rc<F>,
    size_bytes: u64,
    next_offset: i64,
    max_timestamp: i64,
}

impl<S: Storage> PartitionLog<S> {
    /// The share of the cleanable bytes (sealed segments below the high watermark) written
    /// since the last cleaning pass; 0 when there are none.
    pub fn dirty_ratio(&self) -> f64 {
        let state = self.inner.state.borrow();
        let high_watermark = self.inner.high_watermark();
        let cleaned_below = self.inner.cleaned_below.get();
        let (mut dirty, mut total) = (0u64, 0u64);
        for segment in cleanable_prefix(&state.segments, high_watermark) {
            total += segment.size_bytes;
            if segment.base_offset >= cleaned_below {
                dirty += segment.size_bytes;
            }
        }
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Whether a cleaning pass is due: the topic is compacted and its dirty ratio has
    /// reached `min.cleanable.dirty.ratio` (with something dirty at all).
    pub fn compaction_due(&self) -> bool {
        let config = self.inner.config();
        let ratio = self.dirty_ratio();
        config.cleanup_policy.compact && ratio > 0.0 && ratio >= config.min_cleanable_dirty_ratio
    }

    /// Runs one cleaning pass (see the module header), whatever the dirty ratio.
    pub async fn compact(&self, now_ms: i64) -> Result<CompactionStats> {
        let inner = &*self.inner;
        let config = inner.config();
        let mut stats = CompactionStats::default();
        let candidates: Vec<Candidate<S::File>> = {
            let state = inner.state.borrow();
            state.check_usable()?;
            if state.exclusive || state.cleaning {
                return Ok(stats);
            }
            cleanable_prefix(&state.segments, inner.high_watermark())
                .map(|segment| Candidate {
                    base_offset: segment.base_offset,
                    file: segment.file.clone().expect("a sealed segment has its file"),
                    size_bytes: segment.size_bytes,
                    next_offset: segment.next_offset,
                    max_timestamp: segment.max_timestamp,
                })
                .collect()
        };
        let entries_max = (config.cleaner_dedupe_bytes / MAP_ENTRY_BYTES).max(1);
        let mut map: HashMap<u128, i64> = HashMap::new();
        // Each idempotent producer's last batch here, by its last offset: kept (empty if
        // need be) so its sequence survives. Counted against the same budget as the keys.
        let mut last_batches: HashMap<i64, i64> = HashMap::new();
        let mut covered = 0;
        'segments: for candidate in &candidates {
            let mut full = false;
            let mut unreadable = None;
            let mut position = 0;
            while position < candidate.size_bytes {
                let mut step = 0;
                let end = scan_segment(
                    &*candidate.file,
                    candidate.base_offset,
                    position,
                    candidate.size_bytes,
                    STEP_BYTES,
                    |_, header, bytes| {
                        step += bytes.len();
                        if header.is_control() {
                            return step < STEP_BYTES;
                        }
                        if header.producer_id >= 0 {
                            if map.len() + last_batches.len() < entries_max
                                || last_batches.contains_key(&header.producer_id)
                            {
                                last_batches.insert(header.producer_id, header.last_offset());
                            } else {
                                full = true;
                                return false;
                            }
                        }
                        let mapped = for_each_keyed_record(&bytes, |record| {
                            let Some(key) = record.key else { return };
                            let hash = key_hash(key);
                            if map.len() + last_batches.len() < entries_max
                                || map.contains_key(&hash)
                            {
                                map.insert(hash, record.offset);
                            } else {
                                full = true;
                            }
                        });
                        if let Err(reason) = mapped {
                            unreadable = Some(reason);
                            return false;
                        }
                        !full && step < STEP_BYTES
                    },
                )
                .await?;
                if let Some(reason) = unreadable.take().or(end.error) {
                    warn!(dir = %inner.dir.display(), segment = candidate.base_offset, "compaction stops before a segment it cannot read: {reason}");
                    break 'segments;
                }
                if full {
                    break 'segments;
                }
                position = end.position;
                step_aside().await;
            }
            covered += 1;
        }
        stats.keys = map.len();
        if covered == 0 {
            if !candidates.is_empty() {
                warn!(
                    dir = %inner.dir.display(),
                    entries_max,
                    "the cleaner's key map cannot hold the first segment's keys: raise --log-cleaner-dedupe-bytes"
                );
            }
            return Ok(stats);
        }
        let tombstones_before_ms = now_ms.saturating_sub(config.delete_retention_ms);
        for candidate in &candidates[..covered] {
            let drop_tombstones = candidate.max_timestamp < tombstones_before_ms;
            let keep = |record: &KeyedRecord<'_>| match record.key {
                // Kept: the produce path refuses these for a compacted topic, and data the
                // cleaner does not understand is never its to drop.
                None => true,
                Some(key) => {
                    let latest = map.get(&key_hash(key)).copied();
                    latest.is_none_or(|latest| latest == record.offset)
                        && !(record.is_tombstone && drop_tombstones)
                }
            };
            let last_of_producer = |header: &RecordBatchHeader| {
                header.producer_id >= 0
                    && last_batches.get(&header.producer_id) == Some(&header.last_offset())
            };
            let outcome =
                clean_segment(inner, candidate, keep, last_of_producer, &mut stats).await?;
            stats.segments_cleaned += 1;
            inner.cleaned_below.set(candidate.next_offset);
            if outcome == Outcome::Removed {
                stats.segments_removed += 1;
            }
        }
        // Only scheduling reads it: a crash before this write leaves an older position,
        // and the next pass merely finds more to clean.
        write_offset_file(
            &inner.storage,
            &inner.dir,
            CLEANER_OFFSET_FILE_NAME,
            inner.cleaned_below.get(),
        )
        .await?;
        debug!(dir = %inner.dir.display(), ?stats, "compacted");
        Ok(stats)
    }
}

/// The sealed segments at the front of the log that a pass may read: complete on disk,
/// undamaged and wholly below the high watermark.
fn cleanable_prefix<F: SegmentFile>(
    segments: &std::collections::VecDeque<Segment<F>>,
    high_watermark: i64,
) -> impl Iterator<Item = &Segment<F>> {
    let sealed = segments.len().saturating_sub(1);
    segments.iter().take(sealed).take_while(move |segment| {
        segment.seal_complete
            && segment.damaged.is_empty()
            && segment.file.is_some()
            && segment.next_offset <= high_watermark
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Swapped,
    Removed,
    /// The segment went meanwhile (retention, truncation): nothing was changed.
    Gone,
}

/// Writes `candidate`'s kept records to its `.cleaned` copy and swaps it in (or removes the
/// segment if nothing is kept). Nothing changes when every record is kept.
async fn clean_segment<S: Storage>(
    inner: &Inner<S>,
    candidate: &Candidate<S::File>,
    mut keep: impl FnMut(&KeyedRecord<'_>) -> bool,
    last_of_producer: impl Fn(&RecordBatchHeader) -> bool,
    stats: &mut CompactionStats,
) -> Result<Outcome> {
    let config = inner.config();
    let base = candidate.base_offset;
    let cleaned_path = inner.dir.join(segment_file_name(base, CLEANED_SUFFIX));
    let mut output: Option<Rc<S::File>> = None;
    let mut cleaned: Segment<S::File> = Segment::new(base);
    let mut pending: Vec<u8> = Vec::with_capacity(OUTPUT_CHUNK_BYTES * 2);
    let mut flushed_bytes: u64 = 0;
    let mut changed = false;
    let mut position = 0;
    while position < candidate.size_bytes {
        let mut step = 0;
        let end = scan_segment(
            &*candidate.file,
            base,
            position,
            candidate.size_bytes,
            STEP_BYTES,
            |_, header, bytes| {
                step += bytes.len();
                let retained = if header.is_control() {
                    Ok(Retained::All)
                } else if header.records_count == 0 {
                    // A producer's emptied last batch stays only while it is its last.
                    if last_of_producer(header) {
                        Ok(Retained::All)
                    } else {
                        Ok(Retained::Nothing)
                    }
                } else {
                    let before = header.records_count;
                    let retained = retain_records(&bytes, &mut keep);
                    if let Ok(Retained::Some(kept)) = &retained
                        && let Ok(kept_header) = RecordBatchHeader::decode(kept)
                    {
                        stats.records_removed += (before - kept_header.records_count) as u64;
                    } else if let Ok(Retained::Nothing) = &retained {
                        stats.records_removed += before as u64;
                    }
                    match retained {
                        // A producer's last batch stays, emptied of its records.
                        Ok(Retained::Nothing) if last_of_producer(header) => {
                            empty_batch(&bytes).map(Retained::Some)
                        }
                        other => other,
                    }
                };
                let kept: Option<&[u8]> = match &retained {
                    Ok(Retained::All) => Some(&bytes),
                    Ok(Retained::Some(kept)) => Some(kept),
                    Ok(Retained::Nothing) => None,
                    Err(reason) => {
                        warn!(
                            segment = base,
                            offset = header.base_offset,
                            "the cleaner keeps a batch it cannot parse: {reason}"
                        );
                        Some(&bytes)
                    }
                };
                changed |= !matches!(retained, Ok(Retained::All) | Err(_));
                if let Some(kept) = kept {
                    let kept_header = RecordBatchHeader::decode(kept).expect("a whole batch");
                    let at = flushed_bytes + pending.len() as u64;
                    cleaned.index_batch(&kept_header, at, config.index_interval_bytes);
                    pending.extend_from_slice(kept);
                }
                step < STEP_BYTES && pending.len() < OUTPUT_CHUNK_BYTES
            },
        )
        .await?;
        if let Some(reason) = end.error {
            // Sealed bytes that fail their checks: damage, not the cleaner's to rewrite.
            if let Some(file) = output {
                drop(file);
                remove_if_present(&inner.storage, &cleaned_path).await?;
            }
            return Err(StorageError::CorruptOnDisk {
                segment_base_offset: base,
                position: end.position,
                reason,
            });
        }
        position = end.position;
        if pending.len() >= OUTPUT_CHUNK_BYTES {
            let file = open_output(inner, &cleaned_path, &mut output).await?;
            flushed_bytes +=
                write_aligned(inner, &file, &mut pending, flushed_bytes, false).await?;
        }
        step_aside().await;
    }
    stats.bytes_before += candidate.size_bytes;
    if !changed {
        stats.bytes_after += candidate.size_bytes;
        if output.is_some() {
            remove_if_present(&inner.storage, &cleaned_path).await?;
        }
        return Ok(Outcome::Unchanged);
    }
    let size_bytes = flushed_bytes + pending.len() as u64;
    stats.bytes_after += size_bytes;
    if size_bytes == 0 {
        if output.is_some() {
            remove_if_present(&inner.storage, &cleaned_path).await?;
        }
        return remove_emptied(inner, candidate).await;
    }
    let file = open_output(inner, &cleaned_path, &mut output).await?;
    write_aligned(inner, &file, &mut pending, flushed_bytes, true).await?;
    file.truncate(size_bytes)
        .await
        .map_err(|e| StorageError::io("truncate cleaned segment", e))?;
    file.fdatasync()
        .await
        .map_err(|e| StorageError::io("fdatasync cleaned segment", e))?;
    cleaned.close_time_index();
    cleaned.next_offset = candidate.next_offset;
    cleaned.size_bytes = size_bytes;
    cleaned.written_bytes = size_bytes;
    cleaned.preallocated_bytes = size_bytes;
    cleaned.sealed = true;
    cleaned.seal_complete = true;
    cleaned.file = Some(file);
    if !claim(inner, candidate) {
        remove_if_present(&inner.storage, &cleaned_path).await?;
        return Ok(Outcome::Gone);
    }
    let swapped = swap_in(inner, base, &cleaned_path, &cleaned).await;
    release(
        inner,
        candidate.next_offset,
        swapped.is_ok().then_some(|state: &mut LogState<S::File>| {
            let slot = state
                .segment_mut(base)
                .expect("a claimed segment stays until released");
            *slot = cleaned;
        }),
    );
    swapped.map(|()| Outcome::Swapped)
}

/// Marks the swap of `candidate` as begun if its segment is still the one read (same file),
/// so retention and truncation keep off it until [`Inner::progress`] is notified.
fn claim<S: Storage>(inner: &Inner<S>, candidate: &Candidate<S::File>) -> bool {
    let mut state = inner.state.borrow_mut();
    let same = state.segment(candidate.base_offset).is_some_and(|segment| {
        segment
            .file
            .as_ref()
            .is_some_and(|file| Rc::ptr_eq(file, &candidate.file))
    });
    if !same || state.exclusive || state.cleaning || state.check_usable().is_err() {
        return false;
    }
    state.cleaning = true;
    true
}

/// The commit and the swap, on disk (see the module header).
async fn swap_in<S: Storage>(
    inner: &Inner<S>,
    base: i64,
    cleaned_path: &Path,
    cleaned: &Segment<S::File>,
) -> Result<()> {
    let storage = &inner.storage;
    let dir = &inner.dir;
    let swap_path = dir.join(segment_file_name(base, SWAP_SUFFIX));
    storage
        .rename(cleaned_path, &swap_path)
        .await
        .map_err(|e| StorageError::io("rename cleaned segment", e))?;
    storage
        .sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync log dir", e))?;
    finish_swap(storage, dir, base).await?;
    write_whole_file(
        storage,
        &dir.join(segment_file_name(base, INDEX_SUFFIX)),
        &cleaned.offset_index.encode(),
    )
    .await?;
    write_whole_file(
        storage,
        &dir.join(segment_file_name(base, TIME_INDEX_SUFFIX)),
        &cleaned.time_index.encode(),
    )
    .await
}

/// A committed swap's second half: the old index files go (they describe the old
/// positions; a segment without them has them rebuilt at open), and `BASE.log.swap`
/// replaces `BASE.log`.
async fn finish_swap<S: Storage>(storage: &S, dir: &Path, base: i64) -> Result<()> {
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove_if_present(storage, &dir.join(segment_file_name(base, suffix))).await?;
    }
    storage
        .rename(
            &dir.join(segment_file_name(base, SWAP_SUFFIX)),
            &dir.join(segment_file_name(base, LOG_SUFFIX)),
        )
        .await
        .map_err(|e| StorageError::io("rename swapped segment", e))?;
    storage
        .sync_dir(dir)
        .await
        .map_err(|e| StorageError::io("sync log dir", e))
}

/// Removes a segment whose every record the pass dropped. If it was the first, the log
/// start moves up to the next segment (every offset below held only superseded records).
async fn remove_emptied<S: Storage>(
    inner: &Inner<S>,
    candidate: &Candidate<S::File>,
) -> Result<Outcome> {
    if !claim(inner, candidate) {
        return Ok(Outcome::Gone);
    }
    let base = candidate.base_offset;
    let removed = async {
        remove_segment_files(&inner.storage, &inner.dir, base).await?;
        inner
            .storage
            .sync_dir(&inner.dir)
            .await
            .map_err(|e| StorageError::io("sync log dir", e))
    }
    .await;
    release(
        inner,
        candidate.next_offset,
        removed.is_ok().then_some(|state: &mut LogState<S::File>| {
            state.segments.retain(|segment| segment.base_offset != base);
            let log_start_offset = state.log_start_offset();
            inner
                .leader_epochs
                .borrow_mut()
                .truncate_from_start(log_start_offset);
        }),
    );
    removed.map(|()| Outcome::Removed)
}

/// Ends a claim. `changed` (given when the disk step succeeded) edits the segments; then the
/// cached batches below `cleaned_below` go (they are the records as appended) and so does
/// any read-ahead (positions now hold other batches), and retention and truncation may go on.
fn release<S: Storage>(
    inner: &Inner<S>,
    cleaned_below: i64,
    changed: Option<impl FnOnce(&mut LogState<S::File>)>,
) {
    {
        let mut state = inner.state.borrow_mut();
        if let Some(change) = changed {
            change(&mut state);
            drop_cached_below(&mut state, cleaned_below);
            state.read_ahead_take();
            state.truncations += 1;
        }
        state.cleaning = false;
        inner.assert_offsets_ordered(&state);
    }
    inner.progress.notify();
}

/// Drops the cached batches of the offsets below `offset`: they are the segment's records
/// as appended, and readers must see it as cleaned.
fn drop_cached_below<F: SegmentFile>(state: &mut LogState<F>, offset: i64) {
    while state
        .cache
        .front()
        .is_some_and(|cached| cached.base_offset < offset)
    {
        state.cache_pop_front();
    }
}

async fn open_output<S: Storage>(
    inner: &Inner<S>,
    path: &Path,
    output: &mut Option<Rc<S::File>>,
) -> Result<Rc<S::File>> {
    if let Some(file) = output {
        return Ok(file.clone());
    }
    let file = inner
        .storage
        .open(path, true)
        .await
        .map_err(|e| StorageError::io("create cleaned segment", e))?;
    // A copy left by a pass that failed without a crash starts over.
    file.truncate(0)
        .await
        .map_err(|e| StorageError::io("truncate cleaned segment", e))?;
    let file = Rc::new(file);
    *output = Some(file.clone());
    Ok(file)
}

/// Writes the whole blocks of `pending` at `at` (all of it, zero-padded, when `last`) and
/// drops them from `pending`. Returns the bytes of output written (unpadded).
async fn write_aligned<S: Storage>(
    inner: &Inner<S>,
    file: &Rc<S::File>,
    pending: &mut Vec<u8>,
    at: u64,
    last: bool,
) -> Result<u64> {
    let whole = if last {
        pending.len()
    } else {
        align_down(pending.len() as u64) as usize
    };
    if whole == 0 {
        return Ok(0);
    }
    let padded = align_up(whole as u64) as usize;
    let mut buffer = inner.storage.alloc_buffer(padded);
    buffer.as_mut()[..whole].copy_from_slice(&pending[..whole]);
    buffer.as_mut()[whole..].fill(0);
    file.write_all_at(Rc::new(buffer), at)
        .await
        .map_err(|e| StorageError::io("write cleaned segment", e))?;
    pending.drain(..whole);
    Ok(whole as u64)
}

/// At open, before the segments are listed: an uncommitted cleaned copy is removed (its
/// segment stands as it was) and a committed one replaces its segment.
pub(super) async fn finish_interrupted_cleaning<S: Storage>(storage: &S, dir: &Path) -> Result<()> {
    let names = storage
        .list(dir)
        .map_err(|e| StorageError::io("list log dir", e))?;
    let mut changed = false;
    for name in &names {
        if parse_segment_file_name(name, CLEANED_SUFFIX).is_some() {
            remove_if_present(storage, &dir.join(name)).await?;
            changed = true;
        }
    }
    for name in &names {
        if let Some(base) = parse_segment_file_name(name, SWAP_SUFFIX) {
            warn!(dir = %dir.display(), base, "finishing a cleaned segment's swap a crash interrupted");
            finish_swap(storage, dir, base).await?;
            changed = true;
        }
    }
    if changed {
        storage
            .sync_dir(dir)
            .await
            .map_err(|e| StorageError::io("sync log dir", e))?;
    }
    Ok(())
}
