//! The server's side of the replicated group log (a cluster node only): after every
//! metadata snapshot a core applies, the `__consumer_offsets` partitions it now leads are
//! lent to its group coordinator, each with an append that is answered as acks=all is
//! (durable here, then on every in-sync replica, at least `min.insync.replicas` of them),
//! and the coordinator loads their groups in the core's maintenance queue. Runs on the
//! shard's core.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use crate::cluster::metadata::ClusterSnapshot;
use crate::group::coordinator::{OFFSETS_TOPIC, OffsetsPartition};
use crate::server::error_codes::{ToErrorCode, coordinator_error};
use crate::shard::replication::Role;
use crate::shard::tasks::TaskKind;
use crate::shard::{Log, OwnedPartition, Shard};
use spindle_protocol::ErrorCode;

/// How long a group write may wait for the in-sync replicas (Kafka's
/// `offsets.commit.timeout.ms`): past it the client gets REQUEST_TIMED_OUT and retries.
pub const OFFSET_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Applies `snapshot` to the shard, then tells its group coordinator which partitions of
/// `__consumer_offsets` it leads now.
pub async fn adopt_snapshot(shard: &Rc<Shard>, snapshot: Arc<ClusterSnapshot>) {
    shard.apply_snapshot(snapshot).await;
    lend_offsets_partitions(shard);
}

fn lend_offsets_partitions(shard: &Rc<Shard>) {
    if shard.config.quorum.is_none() {
        return;
    }
    let snapshot = shard.snapshot();
    let local = snapshot.local_broker(shard.core);
    let (partitions, led) = match snapshot.topic(OFFSETS_TOPIC) {
        None => (0, Vec::new()),
        Some(topic) => {
            let led: Vec<(i32, Rc<dyn OffsetsPartition>)> = (0..topic.partition_count())
                .filter(|&partition| snapshot.owner(topic, partition) == Some(local))
                .filter_map(|partition| {
                    let owned = shard.replica(OFFSETS_TOPIC, partition)?;
                    // A replica that could not take up its leadership yet is not lent.
                    matches!(owned.role, Role::Leader(_)).then(|| {
                        let lent: Rc<dyn OffsetsPartition> = Rc::new(LedOffsetsPartition {
                            owned,
                            leader_epoch: topic.leader_epoch(partition),
                            lag_time_max: shard.config.replica_lag_time_max,
                        });
                        (partition, lent)
                    })
                })
                .collect();
            (topic.partition_count(), led)
        }
    };
    for (partition, generation) in shard.groups.lead_offsets_partitions(partitions, led) {
        let groups = shard.groups.clone();
        shard
            .tasks
            .spawn_tracked(TaskKind::Maintenance, "load-groups", async move {
                groups.load_offsets_partition(partition, generation).await;
            });
    }
}

/// A `__consumer_offsets` partition this core leads, as its coordinator writes to it.
struct LedOffsetsPartition {
    owned: OwnedPartition,
    leader_epoch: i32,
    lag_time_max: Duration,
}

impl OffsetsPartition for LedOffsetsPartition {
    fn log(&self) -> &Log {
        &self.owned.log
    }

    fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    fn append_committed(
        &self,
        batch: BytesMut,
    ) -> Pin<Box<dyn Future<Output = Result<(), ErrorCode>> + '_>> {
        Box::pin(async move {
            let log = &self.owned.log;
            let replication = self.owned.leader_state();
            let min_in_sync = log.config().min_insync_replicas;
            // As acks=all: refused before anything is appended.
            if replication.map_or(1, |state| state.in_sync_now(self.lag_time_max)) < min_in_sync {
                return Err(coordinator_error(ErrorCode::NotEnoughReplicas));
            }
            let info = log
                .append(batch)
                .await
                .map_err(|e| coordinator_error(e.error_code()))?;
            let end_offset = info.last_offset + 1;
            let committed = async {
                log.wait_durable(end_offset)
                    .await
                    .map_err(|e| coordinator_error(e.error_code()))?;
                if let Some(state) = replication {
                    if !state.wait_replicated(end_offset, log).await {
                        return Err(coordinator_error(ErrorCode::NotLeaderOrFollower));
                    }
                    if state.in_sync_count() < min_in_sync {
                        return Err(coordinator_error(ErrorCode::NotEnoughReplicasAfterAppend));
                    }
                }
                Ok(())
            };
            futures_lite::future::or(committed, async {
                glommio::timer::sleep(OFFSET_COMMIT_TIMEOUT).await;
                Err(ErrorCode::RequestTimedOut)
            })
            .await
        })
    }
}
