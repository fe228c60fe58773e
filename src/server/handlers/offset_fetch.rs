//! OffsetFetch: a group's committed offsets (one group, or several at v8+). Runs on the
//! group's coordinator core.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;

use super::group_lookup::{coordinator_for, text};
use super::{RequestContext, Response, ready};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// `(topic, partition, offset, leader epoch, metadata, error)` for one group.
pub(super) type FetchedOffset = (String, i32, i64, i32, Option<String>, ErrorCode);

pub(super) fn fetch_offsets(
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
pub(super) fn by_topic(rows: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
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

served!(OffsetFetch, 1..=9, |shard, call, body| {
    ready(offset_fetch(shard, &call.context, body))
});
