//! Shared by the consumer-group APIs: which broker coordinates a group. A group request that
//! reaches a broker other than the group's coordinator gets NOT_COORDINATOR, and the client
//! asks FindCoordinator again. Runs on the core that received the request.

use std::rc::Rc;

use kafka_protocol::protocol::StrBytes;

use crate::cluster::metadata::{BrokerEndpoint, ClusterSnapshot};
use crate::group::coordinator::{OFFSETS_TOPIC, offsets_partition_of};
use crate::group::{GroupCoordinator, coordinator_core};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// This core's coordinator if it coordinates `group_id` now.
pub(super) fn coordinator_for(
    shard: &Shard,
    group_id: &str,
) -> Result<Rc<GroupCoordinator>, ErrorCode> {
    if group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let snapshot = shard.snapshot();
    let coordinator = coordinator_of(shard, &snapshot, group_id).map(|broker| broker.id);
    if coordinator != Some(snapshot.local_broker(shard.core)) {
        return Err(ErrorCode::NotCoordinator);
    }
    // The snapshot says this broker leads the group's partition; until the coordinator
    // has it loaded the client waits (retriable), not looks elsewhere.
    shard.groups.serves(group_id).map_err(|code| match code {
        ErrorCode::NotCoordinator => ErrorCode::CoordinatorLoadInProgress,
        other => other,
    })?;
    Ok(shard.groups.clone())
}

/// The broker coordinating `group_id`, so every broker of every node answers
/// FindCoordinator the same way. `None`: none can now (COORDINATOR_NOT_AVAILABLE, which
/// clients retry).
/// - One node: a pure function of the id over the cores, whose group logs hold the
///   groups.
/// - A cluster: the leader of the `__consumer_offsets` partition the id hashes to
///   (Kafka's design), while its node is live; `None` until that topic exists.
pub(super) fn coordinator_of(
    shard: &Shard,
    snapshot: &ClusterSnapshot,
    group_id: &str,
) -> Option<BrokerEndpoint> {
    if shard.config.quorum.is_some() {
        let topic = snapshot.topic(OFFSETS_TOPIC)?;
        let partition = offsets_partition_of(group_id, topic.partition_count());
        let leader = snapshot.owner(topic, partition)?;
        if !snapshot.is_live(leader) {
            return None;
        }
        let (host, port) = snapshot.endpoint(leader)?;
        return Some(BrokerEndpoint {
            id: leader,
            host,
            port,
            rack: String::new(),
        });
    }
    let mut brokers = snapshot.registered_brokers();
    if brokers.is_empty() {
        return None;
    }
    let index = coordinator_core(group_id, brokers.len() as u32) as usize;
    let broker = brokers.swap_remove(index);
    snapshot.is_live(broker.id).then_some(broker)
}
