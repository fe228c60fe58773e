//! Spindle: a Kafka-compatible streaming broker, thread-per-core on io_uring (glommio).
//!
//! | module     | owns |
//! |------------|------|
//! | `protocol` | pure wire facts: record batches, Kafka error codes |
//! | `storage`  | per-partition logs on direct I/O |
//! | `runtime`  | executor start-up: memlock, the direct-I/O primer |

pub mod protocol;
pub mod runtime;
pub mod storage;
