//! Reads: by offset (from the cache, else the segment files) and by timestamp (ListOffsets).
//! Owner core only.

use std::rc::Rc;

use bytes::Bytes;

use super::cache::read_cache;
use super::read_ahead::ReadAhead;
use super::scan::{
    FirstChunk, SCAN_CHUNK_BYTES, scan_chunk_bytes, scan_segment, scan_segment_from,
};
use super::segment::SearchStart;
use crate::storage::error::Result;
use crate::storage::resync::find_next_batch;
use crate::storage::{PartitionLog, SegmentFile, Storage, StorageError, TimestampOffset};
use spindle_protocol::record_batch::{RecordBatchHeader, record_timestamps};

impl<S: Storage> PartitionLog<S> {
    /// Whole batches from the one containing `from_offset`, up to `max_bytes` (at least one
    /// batch if any is visible, as Kafka does) and never past the high watermark. Recent
    /// batches come from memory; older ones from the device, CRC-checked.
    pub async fn read(&self, from_offset: i64, max_bytes: usize) -> Result<Vec<Bytes>> {
        self.read_below(from_offset, max_bytes, self.high_watermark())
            .await
    }

    /// [`Self::read`] for a follower copying this log: up to the local high watermark,
    /// past the replication cap that holds consumers back until the followers have it.
    pub async fn read_replica(&self, from_offset: i64, max_bytes: usize) -> Result<Vec<Bytes>> {
        self.read_below(from_offset, max_bytes, self.local_high_watermark())
            .await
    }

    async fn read_below(
        &self,
        from_offset: i64,
        max_bytes: usize,
        high_watermark: i64,
    ) -> Result<Vec<Bytes>> {
        let mut from_offset = from_offset;
        loop {
            let out = self
                .read_in_segment(from_offset, max_bytes, high_watermark)
                .await?;
            if !out.is_empty() {
                return Ok(out);
            }
            // Nothing at or after `from_offset` in its segment: compaction can leave a
            // segment's end (or a whole segment) without batches. Read on from the next
            // segment, as Kafka does, rather than answer empty forever.
            let next_base = self
                .inner
                .state
                .borrow()
                .segments
                .iter()
                .map(|segment| segment.base_offset)
                .find(|&base| base > from_offset);
            match next_base {
                Some(base) if base < high_watermark => from_offset = base,
                _ => return Ok(out),
            }
        }
    }

    /// [`Self::read_below`] within the segment holding `from_offset` (or the cache).
    async fn read_in_segment(
        &self,
        from_offset: i64,
        max_bytes: usize,
        high_watermark: i64,
    ) -> Result<Vec<Bytes>> {
        if let Some(seat) = self.inner.budget_seat.get() {
            seat.touch();
        }
        let (file, segment_base, start_position, limit_position, read_ahead, truncations) = {
            let mut state = self.inner.state.borrow_mut();
            state.check_readable()?;
            let log_start_offset = state.log_start_offset();
            // Out of range past what this log holds; between a replication cap and that,
            // nothing to read yet (Kafka's rule: a consumer of a new leader whose high
            // watermark is still catching up is not reset).
            let local = self.inner.local_high_watermark();
            if from_offset < log_start_offset || from_offset > local.max(high_watermark) {
                return Err(StorageError::OffsetOutOfRange {
                    offset: from_offset,
                    log_start_offset,
                    high_watermark,
                });
            }
            if from_offset >= high_watermark {
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
            let (segment_base, limit_position) = (segment.base_offset, segment.written_bytes);
            // This cold read takes the read-ahead if it was issued for it; any other drops it.
            let read_ahead = state
                .read_ahead_take()
                .filter(|read_ahead| read_ahead.serves(segment_base, from_offset));
            let start_position = read_ahead
                .as_ref()
                .map_or(u64::from(position), |read_ahead| read_ahead.position);
            (
                file,
                segment_base,
                start_position,
                limit_position,
                read_ahead,
                state.truncations,
            )
        };
        let mut first = match read_ahead {
            Some(read_ahead) => {
                let want = read_ahead.want;
                read_ahead
                    .chunk()
                    .await
                    .map(|bytes| FirstChunk { want, bytes })
            }
            None => None,
        };
        let chunk_bytes = scan_chunk_bytes(max_bytes, &self.inner.config());
        // Where the last batch taken ends, and the offset after it: where a sequential
        // reader's next fetch begins.
        let taken_end = std::cell::Cell::new(None);
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut start_position = start_position;
        loop {
            // Shared with the cut-batch check: whether anything has been taken yet.
            let taken_any = std::cell::Cell::new(false);
            // The offset after the last intact batch seen, where damage would begin.
            let seen_end = std::cell::Cell::new(segment_base);
            let end = scan_segment_from(
                &*file,
                segment_base,
                start_position,
                limit_position,
                chunk_bytes,
                first.take(),
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
                |position, header, bytes| {
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
                    taken_end.set(Some((position + bytes.len() as u64, header.next_offset())));
                    out.push(bytes);
                    taken_any.set(true);
                    total < max_bytes
                },
            )
            .await?;
            let Some(reason) = end.error else {
                if let Some((position, next_offset)) = taken_end.get() {
                    self.start_read_ahead(
                        file,
                        segment_base,
                        position,
                        next_offset,
                        chunk_bytes,
                        truncations,
                    );
                }
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

    /// Starts reading the chunk at `position` of segment `segment_base`, where the read just
    /// served ended, unless the next read would not come from the device there: nothing more
    /// is written in that segment, the cache holds `next_offset`, or the log was truncated
    /// since the read began (the position may now hold other offsets).
    fn start_read_ahead(
        &self,
        file: Rc<S::File>,
        segment_base: i64,
        position: u64,
        next_offset: i64,
        chunk_bytes: usize,
        truncations: u64,
    ) {
        let high_watermark = self.high_watermark();
        let mut state = self.inner.state.borrow_mut();
        if state.truncations != truncations || state.closing || next_offset >= high_watermark {
            return;
        }
        if state
            .cache
            .front()
            .is_some_and(|front| front.base_offset <= next_offset)
        {
            return;
        }
        let Some(written_bytes) = state.segment(segment_base).map(|s| s.written_bytes) else {
            return;
        };
        if position >= written_bytes {
            return;
        }
        let want = ((written_bytes - position) as usize).min(chunk_bytes);
        let read = glommio::spawn_local(async move { file.read_at(position, want).await }).detach();
        state.read_ahead_set(ReadAhead {
            segment_base,
            position,
            next_offset,
            want,
            read,
        });
        drop(state);
        self.inner.settle_budget();
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
}
