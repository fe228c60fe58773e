//! Segments: file names, the in-memory view of one segment (size, indexes, what is written
//! and preallocated, damaged ranges) and alignment helpers. Owner core only.

use std::rc::Rc;

use super::now_ms;
use crate::storage::config::BLOCK_BYTES;
use crate::storage::index::{OffsetIndex, TimeIndex};
use spindle_protocol::RecordBatchHeader;

/// Blocks a new segment file reserves. Each later reservation doubles the file's, up to
/// `LogConfig::preallocate_bytes` at a time: 10,000 idle partitions hold 625 MiB of
/// preallocated disk, not 625 GiB, and a busy one reaches 64 MiB steps within a few writes.
pub(super) const PREALLOCATE_FIRST_BYTES: u64 = 64 << 10;

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

pub(super) fn align_down(value: u64) -> u64 {
    value - value % BLOCK_BYTES
}

pub(super) fn align_up(value: u64) -> u64 {
    value.div_ceil(BLOCK_BYTES) * BLOCK_BYTES
}

pub(super) struct Segment<F> {
    pub(super) base_offset: i64,
    /// `None` until the flusher has created the file (reads meanwhile hit the cache).
    pub(super) file: Option<Rc<F>>,
    /// Bytes appended (logical end).
    pub(super) size_bytes: u64,
    /// Bytes whose write to the file has completed.
    pub(super) written_bytes: u64,
    /// Blocks reserved in the file.
    pub(super) preallocated_bytes: u64,
    pub(super) next_offset: i64,
    pub(super) max_timestamp: i64,
    pub(super) offset_index: OffsetIndex,
    pub(super) time_index: TimeIndex,
    pub(super) bytes_since_index_entry: u64,
    pub(super) created_ms: i64,
    /// No more appends go here.
    pub(super) sealed: bool,
    /// Sealed, cut to size, synced and indexed on disk: safe to delete by retention.
    pub(super) seal_complete: bool,
    /// Offset ranges `[from, to)` whose durable bytes failed their checks at recovery:
    /// kept on disk, never served, never handed out again.
    pub(super) damaged: Vec<(i64, i64)>,
}

impl<F> Segment<F> {
    pub(super) fn new(base_offset: i64) -> Segment<F> {
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

    pub(super) fn relative(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset;
        debug_assert!((0..=u32::MAX as i64).contains(&relative));
        relative as u32
    }

    /// Records a batch that starts at `position` in the indexes.
    pub(super) fn index_batch(
        &mut self,
        header: &RecordBatchHeader,
        position: u64,
        interval_bytes: u64,
    ) {
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
    pub(super) fn close_time_index(&mut self) {
        if self.max_timestamp >= 0 && self.next_offset > self.base_offset {
            let last = self.relative(self.next_offset - 1);
            self.time_index.maybe_push(self.max_timestamp, last);
        }
    }
}

/// Where a timestamp search starts within one segment.
pub(super) struct SearchStart<F> {
    pub(super) file: Option<Rc<F>>,
    pub(super) segment_base: i64,
    pub(super) position: u64,
    pub(super) written_bytes: u64,
    pub(super) start_offset: i64,
}
