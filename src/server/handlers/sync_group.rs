//! SyncGroup: the leader hands out assignments, members receive theirs. Runs on the group's
//! coordinator core.

use bytes::Bytes;
use kafka_protocol::messages::*;

use super::group_lookup::{coordinator_for, text};
use super::{Reply, RequestContext, Response, ready};
use crate::group::state::{Reply as GroupReply, SyncResult};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) fn sync_response(context: &RequestContext, result: SyncResult) -> Response {
    let version = context.api_version;
    context.respond(ResponseKind::SyncGroup(
        SyncGroupResponse::default()
            .with_error_code(result.error.code())
            .with_protocol_type(
                result
                    .protocol_type
                    .filter(|_| version >= 5)
                    .map(|p| text(&p)),
            )
            .with_protocol_name(
                result
                    .protocol_name
                    .filter(|_| version >= 5)
                    .map(|p| text(&p)),
            )
            .with_assignment(result.assignment),
    ))
}

pub fn sync_group(shard: &Shard, context: RequestContext, request: SyncGroupRequest) -> Reply {
    let group_id = request.group_id.as_str().to_string();
    let coordinator = match coordinator_for(shard, &group_id) {
        Ok(coordinator) => coordinator,
        Err(code) => {
            return ready(sync_response(
                &context,
                SyncResult {
                    error: code,
                    protocol_type: None,
                    protocol_name: None,
                    assignment: Bytes::new(),
                },
            ));
        }
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.as_str().to_string(), a.assignment.clone()))
        .collect();
    let reply = coordinator.sync(
        &group_id,
        request.member_id.as_str(),
        request.generation_id,
        assignments,
    );
    Box::pin(async move {
        let result = match reply {
            GroupReply::Now(result) => result,
            GroupReply::Later(receiver) => receiver.recv().await.unwrap_or(SyncResult {
                error: ErrorCode::UnknownMemberId,
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            }),
        };
        coordinator.persist_settled_groups().await;
        sync_response(&context, result)
    })
}

served!(SyncGroup, 0..=5, |shard, call, body| {
    sync_group(shard, call.context, body)
});
