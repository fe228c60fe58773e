//! Spindle: a Kafka-compatible streaming broker, thread-per-core on io_uring (glommio).
//!
//! | module     | owns |
//! |------------|------|
//! | `producer` | idempotent producers: producer ids, per-partition sequence state |
//! | `config`   | the broker's flags, validated once into `BrokerConfig` |
//! | `cluster`  | topic metadata snapshots, placement, the controller (core 0), the control plane |
//! | `group`    | consumer groups: coordinator per core, group state machine, group log |
//! | `shard`    | the per-core root: the partitions, groups and producers one core owns, its named task queues and shutdown gate |
//! | `server`   | per-core brokers: listeners, connections, one handler per Kafka API |
//! | `storage`  | per-partition logs on direct I/O |
//! | `runtime`  | executor start-up: memlock, the direct-I/O primer |

pub mod cluster;
pub mod config;
pub mod group;
pub mod producer;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod storage;
