//! Partition reassignment (AlterPartitionReassignments), decided by the controller as
//! Kafka's does: a partition moving to new replicas first grows to the old and the new ones
//! together, the new ones copying the leader as followers. Once every replica asked for is
//! in sync it shrinks to them, with a new leader among them if the old one is not asked for.
//! A cancelled reassignment goes back to the replicas from before at once. Pure: runs
//! wherever the controller runs (core 0, or each node's quorum thread).

use std::collections::HashSet;
use std::sync::Arc;

use super::{error, move_leadership, spell_out_replication};
use crate::cluster::control::PartitionMove;
use crate::cluster::metadata::{BROKERS_PER_NODE, Reassignment, TopicMetadata};
use spindle_protocol::ErrorCode;

/// Checks the replicas asked for one partition: at least one, each a registered broker,
/// each on a node of its own (one replica per node, as placement keeps them). Kafka's
/// INVALID_REPLICA_ASSIGNMENT when not.
pub fn check_target(target: &[i32], is_broker: impl Fn(i32) -> bool) -> Result<Vec<u32>, String> {
    if target.is_empty() {
        return Err("a partition needs at least one replica".into());
    }
    if let Some(unknown) = target.iter().find(|&&broker| !is_broker(broker)) {
        return Err(format!("broker {unknown} is not a live broker"));
    }
    let nodes: HashSet<i32> = target
        .iter()
        .map(|&b| b / BROKERS_PER_NODE as i32)
        .collect();
    if nodes.len() != target.len() {
        return Err(format!(
            "replicas {target:?}: each must be on a node of its own"
        ));
    }
    Ok(target.iter().map(|&broker| broker as u32).collect())
}

/// Applies the reassignments asked for one topic's partitions (`Some`: move to these
/// replicas, `None`: cancel). The changed topic, if anything changed; an error refuses the
/// whole topic and changes nothing.
pub fn reassign_partitions(
    topic: &TopicMetadata,
    changes: &[PartitionMove],
    is_broker: impl Fn(i32) -> bool,
) -> Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)> {
    let mut next = topic.clone();
    if next.partition_followers.is_empty() {
        // One replica so far: every partition gets its (empty) follower list, so one of
        // them can grow.
        next.partition_followers = vec![Vec::new(); next.partition_brokers.len()];
    }
    spell_out_replication(&mut next);
    for (partition, change) in changes {
        let Some(index) = usize::try_from(*partition)
            .ok()
            .filter(|&index| index < next.partition_brokers.len())
        else {
            return error(ErrorCode::UnknownTopicOrPartition, "no such partition");
        };
        match change {
            None => {
                if !next.partition_reassignments.contains_key(partition) {
                    return error(
                        ErrorCode::NoReassignmentInProgress,
                        "no reassignment of this partition is in progress",
                    );
                }
                cancel(&mut next, index, &is_broker)?;
            }
            Some(target) => {
                let target = check_target(target, &is_broker)
                    .map_err(|reason| (ErrorCode::InvalidReplicaAssignment, reason))?;
                if next.partition_reassignments.contains_key(partition) {
                    cancel(&mut next, index, &is_broker)?;
                }
                begin(&mut next, index, target);
                finish_if_in_sync(&mut next, index, &|broker| is_broker(broker as i32));
            }
        }
    }
    if next.partition_reassignments == topic.partition_reassignments
        && next.partition_brokers == topic.partition_brokers
        && next.partition_followers == topic.partition_followers
        && next.partition_preferred == topic.partition_preferred
        && next.partition_isr == topic.partition_isr
    {
        return Ok(None);
    }
    Ok(Some(Arc::new(next)))
}

/// The partition's replicas now, the leader first.
fn replicas(topic: &TopicMetadata, index: usize) -> Vec<u32> {
    std::iter::once(topic.partition_brokers[index])
        .chain(topic.partition_followers[index].iter().copied())
        .collect()
}

/// Starts moving partition `index` to `target`: its followers become every replica old or
/// new but the leader, and the first one asked for becomes its preferred leader. Only a new
/// order of the same replicas needs no copying, so no reassignment stays under way.
fn begin(topic: &mut TopicMetadata, index: usize, target: Vec<u32>) {
    let leader = topic.partition_brokers[index];
    let preferred = topic.partition_preferred[index];
    // The replicas before, the preferred one first, as they were placed.
    let before: Vec<u32> = std::iter::once(preferred)
        .chain(
            replicas(topic, index)
                .into_iter()
                .filter(|&b| b != preferred),
        )
        .collect();
    let reassignment = Reassignment { target, before };
    let removing = reassignment.removing();
    topic.partition_preferred[index] = reassignment.target[0];
    topic.partition_followers[index] = reassignment
        .target
        .iter()
        .chain(&removing)
        .copied()
        .filter(|&b| b != leader)
        .collect();
    if reassignment.adding().is_empty() && removing.is_empty() {
        return;
    }
    topic
        .partition_reassignments
        .insert(index as i32, reassignment);
}

/// Ends the reassignment of partition `index` if every replica asked for is in sync: the
/// replicas become those asked for, the in-sync set keeps only them, and if the leader is
/// not one of them the first one in sync and `live` leads in the next epoch. Whether it
/// ended.
pub fn finish_if_in_sync(
    topic: &mut TopicMetadata,
    index: usize,
    live: &impl Fn(u32) -> bool,
) -> bool {
    let Some(reassignment) = topic.partition_reassignments.get(&(index as i32)) else {
        return false;
    };
    let isr = topic.isr(index as i32);
    if !reassignment.target.iter().all(|b| isr.contains(b)) {
        return false;
    }
    let target = reassignment.target.clone();
    settle(topic, index, &target, live)
}

/// Cancels the reassignment of partition `index`: back to the replicas from before, in
/// their order, the ones being added dropped from the in-sync set. Refused if the leader is
/// one being added and no replica from before is in sync and live to take over.
fn cancel(
    topic: &mut TopicMetadata,
    index: usize,
    is_broker: &impl Fn(i32) -> bool,
) -> Result<(), (ErrorCode, String)> {
    let before = topic.partition_reassignments[&(index as i32)]
        .before
        .clone();
    if !settle(topic, index, &before, &|broker| is_broker(broker as i32)) {
        return Err((
            ErrorCode::InvalidReplicaAssignment,
            "cancelling would leave the partition without a live in-sync leader".into(),
        ));
    }
    topic.partition_preferred[index] = before[0];
    Ok(())
}

/// Partition `index` keeps exactly `keep` (the leader's place aside, in its order): a
/// leader outside it hands over to the first of `keep` in sync and live. Whether it could.
fn settle(
    topic: &mut TopicMetadata,
    index: usize,
    keep: &[u32],
    live: &impl Fn(u32) -> bool,
) -> bool {
    let partition = index as i32;
    let isr = topic.isr(partition);
    let leader = topic.partition_brokers[index];
    if !keep.contains(&leader) {
        let Some(&new_leader) = keep.iter().find(|b| isr.contains(b) && live(**b)) else {
            return false;
        };
        move_leadership(topic, index, new_leader);
    }
    let leader = topic.partition_brokers[index];
    topic.partition_followers[index] = keep.iter().copied().filter(|&b| b != leader).collect();
    topic.partition_isr[index] = std::iter::once(leader)
        .chain(
            isr.into_iter()
                .filter(|&b| b != leader && keep.contains(&b)),
        )
        .collect();
    topic.partition_preferred[index] = keep[0];
    topic.partition_reassignments.remove(&partition);
    true
}
