//! What the shard copies out for observers: every replica's gauges and the core's figures
//! for the metrics endpoint (once a second), and the replicas' sizes for DescribeLogDirs.
//! Runs on the shard's core.

use super::metrics;
use super::replication::Role;
use super::{OwnedPartition, Shard, tasks};

impl Shard {
    /// `f` of every replica this core holds, with its topic and partition.
    fn each_replica<T>(&self, mut f: impl FnMut(&str, i32, &OwnedPartition) -> T) -> Vec<T> {
        let logs = self.logs.borrow();
        let mut out = Vec::new();
        for (topic, topic_logs) in logs.iter() {
            for (&partition, owned) in &topic_logs.partitions {
                out.push(f(topic, partition, owned));
            }
        }
        out
    }

    /// Copies every replica's offsets, size and traffic, and the committed offsets of the
    /// groups this core coordinates, into the metrics (once a second, from the maintenance
    /// queue: the endpoint's thread cannot read the logs or groups themselves).
    pub fn publish_partition_gauges(&self) {
        let gauges = self.each_replica(|topic, partition, owned| {
            let (replicas, in_sync_replicas) = match &owned.role {
                Role::Leader(Some(state)) => {
                    (state.replica_count() as u64, state.in_sync_count() as u64)
                }
                Role::Leader(None) => (1, 1),
                Role::Follower { .. } => (0, 0),
            };
            let (syncs, sync_time) = owned.log.sync_stats();
            metrics::PartitionGauges {
                topic: topic.to_string(),
                partition,
                leader: matches!(owned.role, Role::Leader(_)),
                log_start_offset: owned.log.log_start_offset(),
                log_end_offset: owned.log.log_end_offset(),
                high_watermark: owned.log.high_watermark(),
                size_bytes: owned.log.size_bytes(),
                replicas,
                in_sync_replicas,
                syncs,
                sync_seconds: sync_time.as_secs_f64(),
                bytes_in: owned.traffic.bytes_in.get(),
                records_in: owned.traffic.records_in.get(),
                bytes_out: owned.traffic.bytes_out.get(),
            }
        });
        self.metrics.set_partitions(gauges);
        self.metrics.set_committed(self.groups.all_committed());
        let held = (self.config.buffered_bytes_per_core_max as u64)
            .saturating_sub(self.buffered_bytes.available());
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.metrics.request_bytes_held.store(held, relaxed);
        self.metrics
            .cache_bytes
            .store(self.cache_budget.bytes() as u64, relaxed);
        self.metrics
            .offline_partitions
            .store(self.offline_partitions(), relaxed);
        // glommio hands out the time since the last ask: add it up.
        let executor = glommio::executor();
        let busy = executor.executor_stats().executor_runtime();
        self.metrics
            .busy_nanos
            .fetch_add(busy.as_nanos() as u64, relaxed);
        for (index, kind) in tasks::TaskKind::ALL.into_iter().enumerate() {
            if let Ok(stats) = executor.task_queue_stats(self.tasks.queue(kind)) {
                self.metrics.queue_busy_nanos[index]
                    .fetch_add(stats.runtime().as_nanos() as u64, relaxed);
            }
        }
    }

    /// Partitions the metadata has this core lead whose log is not serving: never opened
    /// (the open failed) or stopped after a write failure.
    fn offline_partitions(&self) -> u64 {
        let snapshot = self.snapshot();
        let local = snapshot.local_broker(self.core);
        let logs = self.logs.borrow();
        let mut offline = 0;
        for topic in snapshot.topics.values() {
            for partition in 0..topic.partition_count() {
                if snapshot.owner(topic, partition) != Some(local) {
                    continue;
                }
                let serving = logs
                    .get(&topic.name)
                    .and_then(|topic_logs| topic_logs.partitions.get(&partition))
                    .is_some_and(|owned| !owned.log.is_failed());
                offline += u64::from(!serving);
            }
        }
        offline
    }

    /// Every replica this core holds, sorted: `(topic, partition, bytes on disk, offset
    /// lag)`, the lag being how far its log end trails the high watermark it knows
    /// (DescribeLogDirs).
    pub fn replica_sizes(&self) -> Vec<(String, i32, u64, i64)> {
        let mut sizes = self.each_replica(|topic, partition, owned| {
            let log = &owned.log;
            let lag = (log.high_watermark() - log.log_end_offset()).max(0);
            (topic.to_string(), partition, log.size_bytes(), lag)
        });
        sizes.sort();
        sizes
    }
}
