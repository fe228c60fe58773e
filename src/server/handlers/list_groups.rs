//! ListGroups: the groups this core coordinates (clients ask every broker). Runs on the
//! receiving core.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;

use super::group_lookup::text;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;

pub fn list_groups(
    shard: &Shard,
    context: &RequestContext,
    request: ListGroupsRequest,
) -> Response {
    let groups = shard
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(state.name()))
        })
        .map(|(group_id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(text(&group_id)))
                .with_protocol_type(text(&protocol_type));
            if context.api_version >= 4 {
                listed.with_group_state(text(state.name()))
            } else {
                listed
            }
        })
        .collect();
    context.respond(ResponseKind::ListGroups(
        ListGroupsResponse::default().with_groups(groups),
    ))
}

served!(ListGroups, 0..=4, |shard, call, body| {
    ready(list_groups(shard, &call.context, body))
});
