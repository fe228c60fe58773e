//! Shared by the consumer-group APIs: which broker coordinates a group. A group request that
//! reaches a broker other than the group's coordinator gets NOT_COORDINATOR, and the client
//! asks FindCoordinator again. Runs on the core that received the request.

use std::rc::Rc;

use kafka_protocol::protocol::StrBytes;

use crate::cluster::metadata::{BrokerEndpoint, ClusterSnapshot};
use crate::group::{GroupCoordinator, coordinator_core};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// This core's coordinator if it coordinates `group_id`.
pub(super) fn coordinator_for(
    shard: &Shard,
    group_id: &str,
) -> Result<Rc<GroupCoordinator>, ErrorCode> {
    if group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let snapshot = shard.snapshot();
    let coordinator = coordinator_of(&snapshot, group_id).map(|broker| broker.id);
    if coordinator != Some(snapshot.local_broker(shard.core)) {
        return Err(ErrorCode::NotCoordinator);
    }
    Ok(shard.groups.clone())
}

/// The broker coordinating `group_id`: a pure function of the id and the brokers
/// registered, so every broker of every node answers FindCoordinator the same way. On one
/// node the brokers are the cores in order. `None` while that broker's node is fenced:
/// the group's state and offsets are there, so it waits for it (COORDINATOR_NOT_AVAILABLE,
/// which clients retry) rather than move and start from nothing.
pub(super) fn coordinator_of(snapshot: &ClusterSnapshot, group_id: &str) -> Option<BrokerEndpoint> {
    let mut brokers = snapshot.registered_brokers();
    if brokers.is_empty() {
        return None;
    }
    let index = coordinator_core(group_id, brokers.len() as u32) as usize;
    let broker = brokers.swap_remove(index);
    snapshot.is_live(broker.id).then_some(broker)
}
