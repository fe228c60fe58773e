//! OffsetCommit: a group's committed offsets, persisted in the group log before the answer.
//! Runs on the group's coordinator core.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::group_lookup::coordinator_for;
use super::{RequestContext, Response, ready};
use crate::group::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::group::records::CommittedOffset;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

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
        if let Err(code) = coordinator.commit(group_id, accepted).await {
            tracing::debug!(
                core = shard.core,
                "committing offsets for {group_id}: {code:?}"
            );
            for topic_errors in &mut errors {
                for error in topic_errors.iter_mut() {
                    if *error == ErrorCode::None {
                        *error = code;
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

served!(OffsetCommit, 2..=9, |shard, call, body| {
    ready(offset_commit(shard, &call.context, body).await)
});
