//! The write side of an append: copying a batch into the direct-I/O buffer, queueing
//! full buffers and the padded partial block for the flusher, rolling segments. Runs inside
//! `append` on the owner core; never awaits.

use std::rc::Rc;

use super::segment::{Segment, align_down, align_up};
use super::state::LogState;
use crate::storage::copy::copy_for_device;
use crate::storage::io::IoBuffer;
use crate::storage::{LogConfig, SegmentFile, Storage};

/// Buffer that carries the partial last block after a low-load write (see `take_partial`).
pub(super) const CARRY_BUFFER_BYTES: usize = 64 << 10;

/// What the flusher does, in order.
pub(super) enum FlushOp<B> {
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
pub(super) struct Writer<B> {
    pub(super) buffer: Option<B>,
    /// Segment position of `buffer[0]`; always block-aligned.
    pub(super) position: u64,
    /// Valid bytes in the buffer.
    pub(super) len: usize,
    /// Leading bytes already on the device (the partial block carried over).
    pub(super) clean_len: usize,
    /// Full-size buffers back from the device, reused before allocating. Holding as many as
    /// a busy stream keeps in use matters: a buffer given back to the allocator is unmapped
    /// (4 MiB is above malloc's mmap threshold), and its replacement costs a page fault and
    /// a page clear per 4 KiB on first touch: 7% of the executor's time in the append
    /// benchmark. Emptied when the stream pauses.
    pub(super) free: Vec<B>,
}

impl<B: IoBuffer> Writer<B> {
    pub(super) fn has_new_bytes(&self) -> bool {
        self.buffer.is_some() && self.len > self.clean_len
    }
}

pub(super) fn new_writer<B>() -> Writer<B> {
    Writer {
        buffer: None,
        position: 0,
        len: 0,
        clean_len: 0,
        free: Vec::new(),
    }
}

/// Copies an appended batch into the write buffers, queueing each buffer that fills.
pub(super) fn copy_into_writer<F: SegmentFile, S: Storage<File = F>>(
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
pub(super) fn buffers_in_use_max(config: &LogConfig) -> usize {
    config.dirty_bytes_max.div_ceil(config.write_buffer_bytes) + 2
}

/// Size of the buffer that carries a partial last block after a low-load write.
pub(super) fn carry_buffer_bytes(config: &LogConfig) -> usize {
    config.write_buffer_bytes.min(CARRY_BUFFER_BYTES)
}

/// Queues the unwritten part of the current buffer, padded to a block with zeros. With
/// `carry_tail`, the partial last block is copied into a fresh buffer so the next round
/// rewrites it with what follows.
pub(super) fn take_partial<F: SegmentFile, S: Storage<File = F>>(
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
pub(super) fn roll_segment<F: SegmentFile, S: Storage<File = F>>(
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
