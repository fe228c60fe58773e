//! JoinGroup: a member joins (or rejoins) a group; answered when the rebalance completes.
//! Runs on the group's coordinator core.

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::*;

use super::group_lookup::{coordinator_for, text};
use super::{Reply, RequestContext, Response, ready};
use crate::group::state::{JoinRequest, JoinResult, Reply as GroupReply};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) fn join_response(context: &RequestContext, result: JoinResult) -> Response {
    let version = context.api_version;
    let members = result
        .members
        .into_iter()
        .map(|(member_id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(text(&member_id))
                .with_group_instance_id(instance.filter(|_| version >= 5).map(|i| text(&i)))
                .with_metadata(metadata)
        })
        .collect();
    context.respond(ResponseKind::JoinGroup(
        JoinGroupResponse::default()
            .with_error_code(result.error.code())
            .with_generation_id(result.generation_id)
            .with_protocol_type(
                result
                    .protocol_type
                    .filter(|_| version >= 7)
                    .map(|p| text(&p)),
            )
            .with_protocol_name(match (result.protocol_name, version >= 7) {
                (name, true) => name.map(|n| text(&n)),
                (name, false) => Some(text(&name.unwrap_or_default())),
            })
            .with_leader(text(&result.leader))
            .with_member_id(text(&result.member_id))
            .with_members(members),
    ))
}

pub fn join_group(
    shard: &Shard,
    context: RequestContext,
    request: JoinGroupRequest,
    client_id: String,
    client_host: String,
) -> Reply {
    let group_id = request.group_id.as_str().to_string();
    let coordinator = match coordinator_for(shard, &group_id) {
        Ok(coordinator) => coordinator,
        Err(code) => {
            return ready(join_response(
                &context,
                JoinResult::error(code, request.member_id.as_str()),
            ));
        }
    };
    let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    let rebalance_timeout = if context.api_version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session_timeout
    };
    let join = JoinRequest {
        member_id: request.member_id.as_str().to_string(),
        group_instance_id: request
            .group_instance_id
            .as_ref()
            .map(|i| i.as_str().to_string()),
        client_id: client_id.clone(),
        client_host,
        session_timeout,
        rebalance_timeout,
        protocol_type: request.protocol_type.as_str().to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.as_str().to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: context.api_version >= 4,
    };
    let new_member_id = || {
        format!(
            "{client_id}-{}",
            crate::cluster::metadata::new_topic_id().hyphenated()
        )
    };
    match coordinator.join(&group_id, join, new_member_id) {
        GroupReply::Now(result) => ready(join_response(&context, result)),
        GroupReply::Later(receiver) => Box::pin(async move {
            let result = receiver
                .recv()
                .await
                .unwrap_or_else(|_| JoinResult::error(ErrorCode::UnknownMemberId, ""));
            coordinator.persist_settled_groups().await;
            join_response(&context, result)
        }),
    }
}

served!(JoinGroup, 0..=9, client_id, |shard, call, body| {
    join_group(
        shard,
        call.context,
        body,
        call.client_id.unwrap_or_default(),
        format!("/{}", call.peer.ip()),
    )
});
