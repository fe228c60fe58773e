//! Read-ahead for a sequential reader behind the cache. Owner core only.
//!
//! A consumer that has fallen behind the in-memory tail is served from the device, one read
//! per fetch. Without read-ahead the device is idle while the answer crosses the network and
//! the client works through it, and the next fetch waits for a whole read again: a stream
//! reader gets at most one chunk per (read latency + round trip). Kafka gets the overlap from
//! the kernel's page-cache read-ahead; Spindle reads with O_DIRECT, so it issues the next read
//! itself. After a cold read that stopped short of what is written, the log starts reading the
//! next chunk at once, from where the answer ended, sized like the read just served. The next
//! fetch that starts exactly there takes it; any other read, a truncation or the core's cache
//! budget drops it. At most one per log; its bytes count against the core's cache budget from
//! the moment it is issued, like cached batches.

use std::io;

use bytes::Bytes;
use glommio::task::JoinHandle;

/// A device read issued ahead of the fetch expected to want it.
pub(super) struct ReadAhead {
    /// The segment read, and where in it the chunk starts.
    pub(super) segment_base: i64,
    pub(super) position: u64,
    /// The offset of the first batch at `position`: the next fetch of a sequential reader.
    pub(super) next_offset: i64,
    /// Bytes asked of the device (what the budget was charged); fewer come back only if the
    /// file ended early.
    pub(super) want: usize,
    /// The read itself, running in its own task so it proceeds while nobody awaits it, and
    /// is never cancelled in flight (dropping a detached handle lets it finish unobserved).
    pub(super) read: JoinHandle<io::Result<Bytes>>,
}

impl ReadAhead {
    /// Whether a read of `from_offset` in segment `segment_base` is the one this was issued
    /// for.
    pub(super) fn serves(&self, segment_base: i64, from_offset: i64) -> bool {
        self.segment_base == segment_base && self.next_offset == from_offset
    }

    /// The chunk, once the read completes; `None` if it failed (the caller reads again
    /// itself, and reports that read's error if it fails too).
    pub(super) async fn chunk(self) -> Option<Bytes> {
        match self.read.await {
            Some(Ok(bytes)) => Some(bytes),
            _ => None,
        }
    }
}
