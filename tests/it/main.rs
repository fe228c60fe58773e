//! Every integration test in one crate, so a change to the library links one test binary,
//! not one per file. Each module is one former tests/*.rs file.

mod common;

mod admin_cli;
mod admin_configs;
mod bench_cli;
mod broker_e2e;
mod broker_protocol;
mod cli;
mod client_quotas;
mod cluster;
mod compaction_e2e;
mod connection_limits;
mod data_dir;
mod delete_records;
mod describe_log_dirs;
mod disk_full;
mod divergence;
mod go_clients;
mod group_failover;
mod group_log;
mod groups_e2e;
mod idempotence_e2e;
mod interop;
mod java_client;
mod js_client;
mod layers;
mod leader_epoch_fencing;
mod log_append_time;
mod message_timestamp_bounds;
mod metrics;
mod min_insync;
mod preferred_leader;
mod replication;
mod runtime_liveness;
mod shutdown;
mod spring_quickstart;
mod stale_fetch;
mod storage_compaction;
mod storage_delete_records;
mod storage_epochs;
mod storage_faults;
mod storage_flush;
mod storage_log;
mod storage_segments;
mod topic_compression;
