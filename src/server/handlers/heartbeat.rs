//! Heartbeat: a member says it is alive and learns of rebalances. Runs on the group's
//! coordinator core.

use kafka_protocol::messages::*;

use super::group_lookup::coordinator_for;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;

pub fn heartbeat(shard: &Shard, context: &RequestContext, request: HeartbeatRequest) -> Response {
    let group_id = request.group_id.as_str();
    let error = match coordinator_for(shard, group_id) {
        Ok(coordinator) => {
            coordinator.heartbeat(group_id, request.member_id.as_str(), request.generation_id)
        }
        Err(code) => code,
    };
    context.respond(ResponseKind::Heartbeat(
        HeartbeatResponse::default().with_error_code(error.code()),
    ))
}

served!(Heartbeat, 0..=4, |shard, call, body| {
    ready(heartbeat(shard, &call.context, body))
});
