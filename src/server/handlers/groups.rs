//! Consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups. A group request
//! that reaches a core other than the group's coordinator gets NOT_COORDINATOR, and the
//! client asks FindCoordinator again.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{Reply, RequestContext, Response, ready};
use crate::group::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::group::records::CommittedOffset;
use crate::group::state::{GroupState, JoinRequest, JoinResult, Reply as GroupReply, SyncResult};
use crate::group::{GroupCoordinator, coordinator_core};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

const KEY_TYPE_GROUP: i8 = 0;

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// This core's coordinator if it coordinates `group_id`.
fn coordinator_for(shard: &Shard, group_id: &str) -> Result<Rc<GroupCoordinator>, ErrorCode> {
    if group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    if coordinator_core(group_id, shard.core_ports.len() as u32) != shard.core {
        return Err(ErrorCode::NotCoordinator);
    }
    Ok(shard.groups.clone())
}

pub fn find_coordinator(
    shard: &Shard,
    context: &RequestContext,
    request: FindCoordinatorRequest,
) -> Response {
    let cores = shard.core_ports.len() as u32;
    let locate = |key: &str| -> (ErrorCode, i32, i32) {
        if request.key_type != KEY_TYPE_GROUP {
            // Until transactions are served, a transactional producer must fail at once.
            // COORDINATOR_NOT_AVAILABLE is retriable: clients retry it until their own
            // timeout (15-60 s). Every client treats this one as fatal.
            return (ErrorCode::TransactionalIdAuthorizationFailed, -1, -1);
        }
        if key.is_empty() {
            return (ErrorCode::InvalidGroupId, -1, -1);
        }
        let core = coordinator_core(key, cores);
        (
            ErrorCode::None,
            core as i32,
            i32::from(shard.core_ports[core as usize]),
        )
    };
    let host = text(&shard.config.advertised_host);
    let response = if context.api_version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let (error, node, port) = locate(key.as_str());
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(if error == ErrorCode::None {
                            host.clone()
                        } else {
                            StrBytes::default()
                        })
                        .with_port(port)
                        .with_error_code(error.code())
                        .with_error_message(refusal(error))
                })
                .collect(),
        )
    } else {
        let (error, node, port) = locate(request.key.as_str());
        FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_error_message(refusal(error).filter(|_| context.api_version >= 1))
            .with_node_id(BrokerId(node))
            .with_host(if error == ErrorCode::None {
                host
            } else {
                StrBytes::default()
            })
            .with_port(port)
    };
    context.respond(ResponseKind::FindCoordinator(response))
}

/// The message beside a refused transaction coordinator lookup.
fn refusal(error: ErrorCode) -> Option<StrBytes> {
    (error == ErrorCode::TransactionalIdAuthorizationFailed)
        .then(|| StrBytes::from_static_str("transactions are not supported by this broker yet"))
}

fn join_response(context: &RequestContext, result: JoinResult) -> Response {
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

fn sync_response(context: &RequestContext, result: SyncResult) -> Response {
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

pub async fn offset_commit(
    shard: &Shard,
    context: &RequestContext,
    request: OffsetCommitRequest,
) -> Response {
    let group_id = request.group_id.as_str();
    let group_error = match coordinator_for(shard, group_id) {
        Ok(coordinator) => coordinator.validate_commit(
            group_id,
            request.member_id.as_str(),
            request.generation_id_or_member_epoch,
        ),
        Err(code) => code,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut accepted = Vec::new();
    let mut errors: Vec<Vec<ErrorCode>> = Vec::new();
    for topic in &request.topics {
        let mut topic_errors = Vec::new();
        for partition in &topic.partitions {
            let metadata = partition
                .committed_metadata
                .as_ref()
                .map(|m| m.as_str().to_string());
            let error = if group_error != ErrorCode::None {
                group_error
            } else if metadata
                .as_ref()
                .is_some_and(|m| m.len() > OFFSET_METADATA_BYTES_MAX)
            {
                ErrorCode::OffsetMetadataTooLarge
            } else {
                accepted.push((
                    topic.name.as_str().to_string(),
                    partition.partition_index,
                    CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: if context.api_version >= 6 {
                            partition.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata,
                        commit_timestamp_ms: now_ms,
                    },
                ));
                ErrorCode::None
            };
            topic_errors.push(error);
        }
        errors.push(topic_errors);
    }
    if !accepted.is_empty() {
        let coordinator = shard.groups.clone();
        if let Err(e) = coordinator.commit(group_id, accepted).await {
            tracing::error!(core = shard.core, "committing offsets for {group_id}: {e}");
            for topic_errors in &mut errors {
                for error in topic_errors.iter_mut() {
                    if *error == ErrorCode::None {
                        *error = ErrorCode::CoordinatorNotAvailable;
                    }
                }
            }
        }
    }
    let topics = request
        .topics
        .iter()
        .zip(errors)
        .map(|(topic, topic_errors)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .zip(topic_errors)
                        .map(|(partition, error)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(partition.partition_index)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect();
    context.respond(ResponseKind::OffsetCommit(
        OffsetCommitResponse::default().with_topics(topics),
    ))
}

/// `(topic, partition, offset, leader epoch, metadata, error)` for one group.
type FetchedOffset = (String, i32, i64, i32, Option<String>, ErrorCode);

fn fetch_offsets(
    shard: &Shard,
    group_id: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<FetchedOffset>, ErrorCode> {
    let coordinator = coordinator_for(shard, group_id)?;
    let wanted = topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|(topic, partitions)| partitions.into_iter().map(move |p| (topic.clone(), p)))
            .collect()
    });
    Ok(coordinator
        .committed(group_id, wanted)
        .into_iter()
        .map(|(topic, partition, committed)| match committed {
            Some(c) => (
                topic,
                partition,
                c.offset,
                c.leader_epoch,
                c.metadata,
                ErrorCode::None,
            ),
            None => (
                topic,
                partition,
                -1,
                -1,
                Some(String::new()),
                ErrorCode::None,
            ),
        })
        .collect())
}

/// Groups `(topic, partition, ...)` rows by topic, keeping first-seen order.
fn by_topic(rows: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut grouped: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for row in rows {
        match grouped.iter_mut().find(|(topic, _)| *topic == row.0) {
            Some((_, rows)) => rows.push(row),
            None => grouped.push((row.0.clone(), vec![row])),
        }
    }
    grouped
}

pub fn offset_fetch(
    shard: &Shard,
    context: &RequestContext,
    request: OffsetFetchRequest,
) -> Response {
    let version = context.api_version;
    if version >= 8 {
        let groups =
            request
                .groups
                .iter()
                .map(|group| {
                    let topics = group.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|t| (t.name.as_str().to_string(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let response =
                        OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
                    match fetch_offsets(shard, group.group_id.as_str(), topics) {
                        Err(code) => response.with_error_code(code.code()),
                        Ok(rows) => response.with_topics(
                            by_topic(rows)
                                .into_iter()
                                .map(|(topic, rows)| {
                                    OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(text(&topic)))
                                    .with_partitions(
                                        rows.into_iter()
                                            .map(|(_, partition, offset, epoch, metadata, error)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(partition)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(epoch)
                                                    .with_metadata(metadata.map(|m| text(&m)))
                                                    .with_error_code(error.code())
                                            })
                                            .collect(),
                                    )
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
        return context.respond(ResponseKind::OffsetFetch(
            OffsetFetchResponse::default().with_groups(groups),
        ));
    }
    let topics = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.as_str().to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let response = match fetch_offsets(shard, request.group_id.as_str(), topics) {
        Err(code) if version >= 2 => OffsetFetchResponse::default().with_error_code(code.code()),
        Err(code) => {
            // v1 has no top-level error: every asked partition carries it.
            let topics = request
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|&p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_error_code(code.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
        Ok(rows) => OffsetFetchResponse::default().with_topics(
            by_topic(rows)
                .into_iter()
                .map(|(topic, rows)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(text(&topic)))
                        .with_partitions(
                            rows.into_iter()
                                .map(|(_, partition, offset, epoch, metadata, error)| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(partition)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(if version >= 5 {
                                            epoch
                                        } else {
                                            -1
                                        })
                                        .with_metadata(metadata.map(|m| text(&m)))
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    };
    context.respond(ResponseKind::OffsetFetch(response))
}

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

pub async fn offset_delete(
    shard: &Shard,
    context: &RequestContext,
    request: OffsetDeleteRequest,
) -> Response {
    use kafka_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let group_id = request.group_id.as_str();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.as_str().to_string(), p.partition_index))
        })
        .collect();
    let outcome = match coordinator_for(shard, group_id) {
        Err(code) => Err(code),
        Ok(coordinator) => coordinator.delete_offsets(group_id, &partitions).await,
    };
    let response = match outcome {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(errors) => {
            let mut errors = errors.into_iter();
            OffsetDeleteResponse::default().with_topics(
                request
                    .topics
                    .iter()
                    .map(|t| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(
                                                errors.next().unwrap_or(ErrorCode::None).code(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
        }
    };
    context.respond(ResponseKind::OffsetDelete(response))
}
