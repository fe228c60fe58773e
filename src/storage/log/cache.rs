//! The in-memory tail of the log (frozen appended batches) that readers are served from, and
//! its eviction under the log's and the core's budget. Owner core only.

use std::collections::VecDeque;

use bytes::Bytes;

use super::state::LogState;
use crate::storage::{LogConfig, SegmentFile};

pub(super) struct CachedBatch {
    pub(super) base_offset: i64,
    pub(super) next_offset: i64,
    pub(super) bytes: Bytes,
}

pub(super) fn read_cache(
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
pub(super) fn evict_cache<F: SegmentFile>(
    state: &mut LogState<F>,
    config: &LogConfig,
    written: i64,
) {
    while state.cache_bytes > config.cache_bytes_max {
        match state.cache.front() {
            Some(front) if front.next_offset <= written => {
                state.cache_pop_front();
            }
            _ => break,
        }
    }
}
