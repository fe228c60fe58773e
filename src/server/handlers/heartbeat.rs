//! Heartbeat: a member says it is alive and learns of rebalances. Runs on the group's
//! coordinator core.

use std::rc::Rc;

use kafka_protocol::messages::*;

use super::group_lookup::coordinator_for;
use super::{Api, Call, InOrder, RequestContext, Response, ready};
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

/// This API's entry in the registry (`super::APIS`).
pub const API: Api = Api::new(ApiKey::Heartbeat, 0, 4, serve);

fn serve(shard: &Rc<Shard>, call: Call) -> InOrder<'_> {
    Box::pin(async move {
        let RequestKind::Heartbeat(body) = call.body else {
            return call.context.mismatched();
        };
        ready(heartbeat(shard, &call.context, body))
    })
}
