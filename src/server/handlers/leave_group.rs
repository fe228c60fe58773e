//! LeaveGroup: members leave at once instead of timing out. Runs on the group's coordinator
//! core.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::*;

use super::group_lookup::{coordinator_for, text};
use super::{RequestContext, Response, ready};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub async fn leave_group(
    shard: &Shard,
    context: &RequestContext,
    request: LeaveGroupRequest,
) -> Response {
    let group_id = request.group_id.as_str();
    let members: Vec<(String, Option<String>)> = if context.api_version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.as_str().to_string(),
                    m.group_instance_id.as_ref().map(|i| i.as_str().to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.as_str().to_string(), None)]
    };
    let (error, errors) = match coordinator_for(shard, group_id) {
        Ok(coordinator) => {
            let errors = coordinator.leave(group_id, &members);
            coordinator.persist_settled_groups().await;
            let first = if context.api_version < 3 {
                errors[0]
            } else {
                ErrorCode::None
            };
            (first, errors)
        }
        Err(code) => (code, vec![code; members.len()]),
    };
    let mut response = LeaveGroupResponse::default().with_error_code(error.code());
    if context.api_version >= 3 {
        response = response.with_members(
            members
                .into_iter()
                .zip(errors)
                .map(|((member_id, instance), error)| {
                    MemberResponse::default()
                        .with_member_id(text(&member_id))
                        .with_group_instance_id(instance.map(|i| text(&i)))
                        .with_error_code(error.code())
                })
                .collect(),
        );
    }
    context.respond(ResponseKind::LeaveGroup(response))
}

served!(LeaveGroup, 0..=5, |shard, call, body| {
    ready(leave_group(shard, &call.context, body).await)
});
