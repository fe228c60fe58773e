//! The storage engine: one Kafka-style log per partition, on direct I/O.
//!
//! | module   | owns |
//! |----------|------|
//! | `log/`   | `PartitionLog`, one file per subsystem: state and watermarks, segments, writer, cache, flusher, scan, recovery, reads, retention |
//! | `index`  | sparse offset and time indexes (pure) |
//! | `io`     | the device interface and its glommio direct-I/O implementation |
//! | `sim`    | an in-memory, fault-injecting device for deterministic tests |
//! | `wait`   | single-threaded watermarks and events |
//! | `config` | per-log settings and their validation |
//! | `cache_budget` | one core's memory budget for the logs' caches (LRU across logs) |
//! | `dir_lock` | the exclusive lock on a data directory |
//! | `leader_epoch` | the first offset of each leader epoch in a log (where a diverged replica cuts back to) |
//! | `recovery_point` | the offset below which a log is known durable (never cut) |
//! | `resync` | finding intact batches after damaged bytes |
//! | `read_only` | plain blocking reads of a segment file, for tools (`dump-log`) |
//!
//! Every log is owned by one core's executor; nothing here is `Send` or locked.

pub mod cache_budget;
pub mod config;
mod copy;
pub mod dir_lock;
pub mod error;
pub mod index;
pub mod io;
pub mod leader_epoch;
pub mod log;
pub mod read_only;
pub mod recovery_point;
mod resync;
pub mod sim;
pub(crate) mod wait;

pub use cache_budget::CacheBudget;
pub use config::{CleanupPolicy, FlushPolicy, LogConfig};
pub use error::StorageError;
pub use io::{DmaStorage, SegmentFile, Storage};
pub use log::{AppendInfo, CompactionStats, PartitionLog, TimestampOffset};
