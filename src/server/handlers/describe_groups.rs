//! DescribeGroups: a group's state, protocol and members. Runs on the group's coordinator
//! core.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::*;

use super::group_lookup::{coordinator_for, text};
use super::{RequestContext, Response, ready};
use crate::group::state::GroupState;
use crate::shard::Shard;

pub fn describe_groups(
    shard: &Shard,
    context: &RequestContext,
    request: DescribeGroupsRequest,
) -> Response {
    let version = context.api_version;
    let groups = request
        .groups
        .iter()
        .map(|group_id| {
            let described = DescribedGroup::default().with_group_id(group_id.clone());
            match coordinator_for(shard, group_id.as_str()) {
                Err(code) => described.with_error_code(code.code()),
                Ok(coordinator) => coordinator
                    .with_group(group_id.as_str(), |group| {
                        let protocol = group.protocol_name.clone().unwrap_or_default();
                        let settled = matches!(
                            group.state,
                            GroupState::Stable | GroupState::CompletingRebalance
                        );
                        described
                            .clone()
                            .with_group_state(text(group.state.name()))
                            .with_protocol_type(text(
                                &group.protocol_type.clone().unwrap_or_default(),
                            ))
                            .with_protocol_data(text(if settled { &protocol } else { "" }))
                            .with_members(
                                group
                                    .members
                                    .iter()
                                    .map(|m| {
                                        DescribedGroupMember::default()
                                            .with_member_id(text(&m.member_id))
                                            .with_group_instance_id(
                                                m.group_instance_id
                                                    .clone()
                                                    .filter(|_| version >= 4)
                                                    .map(|i| text(&i)),
                                            )
                                            .with_client_id(text(&m.client_id))
                                            .with_client_host(text(&m.client_host))
                                            .with_member_metadata(
                                                m.protocols
                                                    .iter()
                                                    .find(|(name, _)| *name == protocol)
                                                    .map(|(_, metadata)| metadata.clone())
                                                    .unwrap_or_default(),
                                            )
                                            .with_member_assignment(m.assignment.clone())
                                    })
                                    .collect(),
                            )
                    })
                    .unwrap_or_else(|| described.with_group_state(text(GroupState::Dead.name()))),
            }
        })
        .collect();
    context.respond(ResponseKind::DescribeGroups(
        DescribeGroupsResponse::default().with_groups(groups),
    ))
}

served!(DescribeGroups, 0..=5, |shard, call, body| {
    ready(describe_groups(shard, &call.context, body))
});
