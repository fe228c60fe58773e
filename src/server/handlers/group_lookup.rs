//! Shared by the consumer-group APIs: which core coordinates a group. A group request that
//! reaches a core other than the group's coordinator gets NOT_COORDINATOR, and the client
//! asks FindCoordinator again. Runs on the core that received the request.

use std::rc::Rc;

use kafka_protocol::protocol::StrBytes;

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
    if coordinator_core(group_id, shard.core_ports.len() as u32) != shard.core {
        return Err(ErrorCode::NotCoordinator);
    }
    Ok(shard.groups.clone())
}
