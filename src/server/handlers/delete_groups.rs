//! DeleteGroups: removes empty groups and their offsets. Runs on the group's coordinator core.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::*;

use super::group_lookup::coordinator_for;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;

pub async fn delete_groups(
    shard: &Shard,
    context: &RequestContext,
    request: DeleteGroupsRequest,
) -> Response {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in &request.groups_names {
        let error = match coordinator_for(shard, group_id.as_str()) {
            Err(code) => code,
            Ok(coordinator) => coordinator.delete(group_id.as_str()).await,
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id.clone())
                .with_error_code(error.code()),
        );
    }
    context.respond(ResponseKind::DeleteGroups(
        DeleteGroupsResponse::default().with_results(results),
    ))
}

served!(DeleteGroups, 0..=2, |shard, call, body| {
    ready(delete_groups(shard, &call.context, body).await)
});
