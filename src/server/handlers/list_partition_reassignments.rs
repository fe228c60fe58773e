//! ListPartitionReassignments: the moves under way (`kafka-reassign-partitions.sh
//! --verify`, AdminClient.listPartitionReassignments), from the core's snapshot: each
//! partition's replicas now (old and new together), the ones being added and the ones to
//! be removed. Partitions not being moved, and unknown ones, are left out, as Kafka does.
//! Runs on the receiving core.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, ResponseKind,
};

use super::{RequestContext, Response, ready};
use crate::cluster::metadata::TopicMetadata;
use crate::shard::Shard;

pub fn list_partition_reassignments(
    shard: &Shard,
    context: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> Response {
    let snapshot = shard.snapshot();
    // Null names every topic.
    let asked: Vec<(&TopicMetadata, Option<Vec<i32>>)> = match &request.topics {
        None => snapshot
            .topics
            .values()
            .map(|topic| (&**topic, None))
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|asked| {
                let topic = snapshot.topic(asked.name.as_str())?;
                Some((&**topic, Some(asked.partition_indexes.clone())))
            })
            .collect(),
    };
    let ids = |brokers: Vec<u32>| -> Vec<BrokerId> {
        brokers.into_iter().map(|b| BrokerId(b as i32)).collect()
    };
    let topics = asked
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let ongoing: Vec<OngoingPartitionReassignment> = topic
                .partition_reassignments
                .iter()
                .filter(|(partition, _)| {
                    partitions
                        .as_ref()
                        .is_none_or(|asked| asked.contains(partition))
                })
                .map(|(&partition, reassignment)| {
                    let replicas: Vec<u32> = topic
                        .partition_brokers
                        .get(partition as usize)
                        .into_iter()
                        .copied()
                        .chain(topic.followers(partition).iter().copied())
                        .collect();
                    OngoingPartitionReassignment::default()
                        .with_partition_index(partition)
                        .with_replicas(ids(replicas))
                        .with_adding_replicas(ids(reassignment.adding()))
                        .with_removing_replicas(ids(reassignment.removing()))
                })
                .collect();
            (!ongoing.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_string(topic.name.clone()),
                    ))
                    .with_partitions(ongoing)
            })
        })
        .collect();
    context.respond(ResponseKind::ListPartitionReassignments(
        ListPartitionReassignmentsResponse::default().with_topics(topics),
    ))
}

served!(ListPartitionReassignments, 0..=0, |shard, call, body| {
    ready(list_partition_reassignments(shard, &call.context, body))
});
