//! The shard's side of replication (issue 13): which replicas follow whom (for the
//! fetcher), the in-sync sets its leaders report to the quorum, and the role each replica
//! takes when a snapshot changes its partition's leader. Runs on the shard's core.

use std::rc::Rc;

use super::replication::{LeaderState, Role};
use super::{
    FollowedPartition, OwnedPartition, PRODUCER_SNAPSHOT_FILE_NAME, Shard, rebuild_producer_state,
};
use crate::cluster::control::ControllerRequest;
use crate::cluster::metadata::{ClusterSnapshot, TopicMetadata};

impl Shard {
    /// Every replica this core follows, for its fetcher.
    pub fn followed_partitions(&self) -> Vec<FollowedPartition> {
        let logs = self.logs.borrow();
        logs.iter()
            .flat_map(|(topic, topic_logs)| {
                topic_logs
                    .partitions
                    .iter()
                    .filter_map(move |(&partition, owned)| match owned.role {
                        Role::Follower { leader, epoch } => Some(FollowedPartition {
                            topic: topic.clone(),
                            partition,
                            leader,
                            epoch,
                            log: owned.log.clone(),
                        }),
                        Role::Leader(_) => None,
                    })
            })
            .collect()
    }

    /// Reports to the quorum every in-sync set this core's leaders want changed (followers
    /// lagging past `--replica-lag-time-max-ms` out, caught-up ones in), one at a time per
    /// partition. Runs from the core's maintenance queue.
    pub async fn report_in_sync_replicas(&self) {
        let snapshot = self.snapshot();
        let local = snapshot.local_broker(self.core);
        let led: Vec<(String, i32, OwnedPartition)> = {
            let logs = self.logs.borrow();
            logs.iter()
                .flat_map(|(topic, topic_logs)| {
                    topic_logs
                        .partitions
                        .iter()
                        .filter(|(_, owned)| owned.leader_state().is_some())
                        .map(move |(&p, owned)| (topic.clone(), p, owned.clone()))
                })
                .collect()
        };
        for (topic, partition, owned) in led {
            let state = owned.leader_state().expect("filtered");
            let Some(followers) =
                state.wanted_in_sync(self.config.replica_lag_time_max, &owned.log, |broker| {
                    snapshot.is_live(broker)
                })
            else {
                continue;
            };
            let isr: Vec<u32> = std::iter::once(local).chain(followers).collect();
            tracing::info!(
                core = self.core,
                "{topic}-{partition}: in-sync replicas now {isr:?}"
            );
            let outcomes = self
                .control
                .ask_controller(ControllerRequest::AlterIsr {
                    topic: topic.clone(),
                    partition,
                    leader: local,
                    leader_epoch: state.epoch,
                    isr,
                })
                .await;
            if outcomes
                .first()
                .is_none_or(|outcome| outcome.result.is_err())
            {
                state.alter_failed();
            }
        }
    }

    /// An open replica takes the role the snapshot gives it. Kafka's transitions:
    /// - same leader and epoch: a leader takes the new in-sync set;
    /// - promoted (a follower made leader after a failover): leads in the new epoch from
    ///   what it holds, its producer state rebuilt from its log, starting from the high
    ///   watermark the old leader gave it;
    /// - demoted, or following a new leader: takes no producer batch any more and copies
    ///   the new leader, first cutting back what diverged (the fetcher, by leader epoch).
    pub(super) async fn apply_role(
        &self,
        snapshot: &ClusterSnapshot,
        topic: &TopicMetadata,
        partition: i32,
    ) {
        let Some(owned) = self.replica(&topic.name, partition) else {
            return;
        };
        let Some(leader) = snapshot.owner(topic, partition) else {
            return;
        };
        let local = snapshot.local_broker(self.core);
        let epoch = topic.leader_epoch(partition);
        let followers = snapshot.followers(topic, partition);
        let role = match (&owned.role, leader == local) {
            (Role::Leader(None), true) if followers.is_empty() => return,
            (Role::Leader(Some(state)), true) if state.epoch == epoch && !followers.is_empty() => {
                // A reassignment changes the followers without a new epoch.
                state.set_followers(&followers, &owned.log);
                let (dropped, taken_back) =
                    state.set_in_sync(&snapshot.isr(topic, partition), &owned.log);
                // Counted where the leader takes the quorum's set, whoever changed it (this
                // leader's report, or the controller fencing a lost node).
                let relaxed = std::sync::atomic::Ordering::Relaxed;
                if dropped > 0 {
                    self.metrics.isr_shrinks.fetch_add(1, relaxed);
                }
                if taken_back > 0 {
                    self.metrics.isr_expands.fetch_add(1, relaxed);
                }
                return;
            }
            (
                Role::Follower {
                    leader: was,
                    epoch: then,
                },
                false,
            ) if *was == leader && *then == epoch => {
                return;
            }
            (_, true) if followers.is_empty() => {
                owned.log.set_producer_appends(true);
                // One replica (a reassignment may leave one): nothing caps its readers.
                owned.log.set_replication_high_watermark(None);
                Role::Leader(None)
            }
            (_, true) => {
                tracing::info!(
                    core = self.core,
                    "{}-{partition}: leading in epoch {epoch}",
                    topic.name
                );
                // The epoch is on disk before the first batch of it can be taken.
                if let Err(e) = owned.log.begin_leader_epoch(epoch).await {
                    tracing::error!(
                        core = self.core,
                        "{}-{partition}: recording leader epoch {epoch}: {e}",
                        topic.name
                    );
                    return;
                }
                owned.log.set_producer_appends(true);
                let state = LeaderState::new(
                    epoch,
                    &followers,
                    &snapshot.isr(topic, partition),
                    &owned.log,
                    owned.log.high_watermark(),
                );
                Role::Leader(Some(Rc::new(state)))
            }
            (_, false) => {
                // First, before any wait: no producer batch lands from here on.
                owned.log.set_producer_appends(false);
                let high_watermark = owned.log.high_watermark();
                tracing::info!(
                    core = self.core,
                    "{}-{partition}: following broker {leader} in epoch {epoch} from offset {}",
                    topic.name,
                    owned.log.log_end_offset()
                );
                owned
                    .log
                    .set_replication_high_watermark(Some(high_watermark));
                // What this log holds past the point where it agrees with the new leader's
                // is cut by the fetcher, from the leader's answer on where this log's last
                // epoch ends (its first fetch carries that epoch): no cut here, so nothing
                // every replica holds is cut on a guess. A producer-state snapshot may
                // describe batches the cut removes.
                let _ = std::fs::remove_file(owned.log.dir().join(PRODUCER_SNAPSHOT_FILE_NAME));
                Role::Follower { leader, epoch }
            }
        };
        // The producer state follows the log as it now stands.
        let producers = match rebuild_producer_state(&owned.log).await {
            Ok(producers) => producers,
            Err(e) => {
                tracing::error!(
                    core = self.core,
                    "{}-{partition}: rebuilding producer state: {e}",
                    topic.name
                );
                return;
            }
        };
        if let Some(slot) = self
            .logs
            .borrow_mut()
            .get_mut(&topic.name)
            .and_then(|logs| logs.partitions.get_mut(&partition))
        {
            if let Role::Leader(Some(old)) = &slot.role {
                old.resign();
            }
            slot.role = role;
            *slot.producers.borrow_mut() = producers;
        }
    }

    /// Deletes the replicas this core holds of partitions that no longer have it among
    /// their replicas (a reassignment moved them away), as Kafka's StopReplica with
    /// deletion does. Their fetcher stops with them.
    pub(super) async fn drop_replicas_moved_away(&self, snapshot: &ClusterSnapshot, local: u32) {
        let moved: Vec<(String, i32, OwnedPartition)> = {
            let mut logs = self.logs.borrow_mut();
            let mut moved = Vec::new();
            for (name, topic_logs) in logs.iter_mut() {
                let Some(topic) = snapshot.topic(name) else {
                    continue;
                };
                let away: Vec<i32> = topic_logs
                    .partitions
                    .keys()
                    .copied()
                    .filter(|&partition| {
                        snapshot.owner(topic, partition).is_some_and(|leader| {
                            leader != local
                                && !snapshot.followers(topic, partition).contains(&local)
                        })
                    })
                    .collect();
                for partition in away {
                    let owned = topic_logs.partitions.remove(&partition).expect("listed");
                    moved.push((name.clone(), partition, owned));
                }
            }
            moved
        };
        for (name, partition, owned) in moved {
            if let Role::Leader(Some(state)) = &owned.role {
                state.resign();
            }
            match owned.log.delete().await {
                Ok(()) => tracing::info!(
                    core = self.core,
                    "{name}-{partition}: no longer a replica here, deleted"
                ),
                Err(e) => tracing::error!(core = self.core, "deleting {name}-{partition}: {e}"),
            }
        }
    }
}
