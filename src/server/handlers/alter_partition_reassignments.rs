//! AlterPartitionReassignments: moves partitions to the replicas named, or cancels a move
//! (`kafka-reassign-partitions.sh --execute` and `--cancel`). Each partition is checked
//! here against the core's snapshot, with Kafka's per-partition errors; the valid ones go
//! to the controller (in a cluster, the quorum), which starts each move and ends it once
//! the new replicas are in sync (`cluster::controller::reassign`). Runs on the receiving
//! core.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::control::{ControllerRequest, PartitionMove};
use crate::cluster::controller::reassign::check_target;
use crate::cluster::metadata::ClusterSnapshot;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// A partition's answer known before asking the controller (`None`: sent to it).
type Known = Option<(ErrorCode, String)>;

pub async fn alter_partition_reassignments(
    shard: &Shard,
    context: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> Response {
    let snapshot = shard.snapshot();
    let brokers: Vec<i32> = snapshot.brokers().iter().map(|b| b.id as i32).collect();
    let mut answers: Vec<(String, Vec<(i32, Known)>)> = Vec::new();
    let mut wanted: Vec<(String, Vec<PartitionMove>)> = Vec::new();
    for topic in &request.topics {
        let name = topic.name.as_str().to_string();
        let mut topic_answers = Vec::new();
        let mut topic_wanted = Vec::new();
        for partition in &topic.partitions {
            let replicas = partition
                .replicas
                .as_ref()
                .map(|replicas| replicas.iter().map(|b| b.0).collect::<Vec<i32>>());
            let known = check_partition(
                &snapshot,
                &name,
                partition.partition_index,
                replicas.as_deref(),
                request.allow_replication_factor_change,
                &brokers,
            );
            if known.is_none() {
                topic_wanted.push((partition.partition_index, replicas));
            }
            topic_answers.push((partition.partition_index, known));
        }
        if !topic_wanted.is_empty() {
            wanted.push((name.clone(), topic_wanted));
        }
        answers.push((name, topic_answers));
    }
    let outcomes = if wanted.is_empty() {
        Vec::new()
    } else {
        shard
            .control
            .ask_controller(ControllerRequest::ReassignPartitions { topics: wanted })
            .await
    };
    let responses = answers
        .into_iter()
        .map(|(name, partitions)| {
            let outcome = outcomes.iter().find(|o| o.name == name);
            let partitions = partitions
                .into_iter()
                .map(|(partition, known)| {
                    let (code, message) = match (known, outcome) {
                        (Some((code, message)), _) => (code, Some(message)),
                        (None, Some(outcome)) => match &outcome.result {
                            Ok(_) => (ErrorCode::None, None),
                            Err((code, message)) => (*code, Some(message.clone())),
                        },
                        (None, None) => (
                            ErrorCode::RequestTimedOut,
                            Some("the controller did not answer".into()),
                        ),
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(partition)
                        .with_error_code(code.code())
                        .with_error_message(message.map(StrBytes::from_string))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                    name,
                )))
                .with_partitions(partitions)
        })
        .collect();
    context.respond(ResponseKind::AlterPartitionReassignments(
        AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(request.allow_replication_factor_change)
            .with_responses(responses),
    ))
}

/// Kafka's answer for one partition that cannot be moved as asked, if any.
fn check_partition(
    snapshot: &ClusterSnapshot,
    name: &str,
    partition: i32,
    replicas: Option<&[i32]>,
    allow_replication_factor_change: bool,
    brokers: &[i32],
) -> Known {
    let Some(topic) = snapshot
        .topic(name)
        .filter(|topic| (0..topic.partition_count()).contains(&partition))
    else {
        return Some((
            ErrorCode::UnknownTopicOrPartition,
            "no such partition".into(),
        ));
    };
    let ongoing = topic.partition_reassignments.get(&partition);
    let Some(replicas) = replicas else {
        return ongoing.is_none().then(|| {
            (
                ErrorCode::NoReassignmentInProgress,
                "no reassignment of this partition is in progress".into(),
            )
        });
    };
    if let Err(reason) = check_target(replicas, |broker| brokers.contains(&broker)) {
        return Some((ErrorCode::InvalidReplicaAssignment, reason));
    }
    let count_before = match ongoing {
        Some(reassignment) => reassignment.before.len(),
        None => 1 + topic.followers(partition).len(),
    };
    if !allow_replication_factor_change && replicas.len() != count_before {
        return Some((
            ErrorCode::InvalidReplicationFactor,
            format!(
                "{} replicas asked for, {count_before} now, and the request does not allow a change",
                replicas.len()
            ),
        ));
    }
    None
}

served!(AlterPartitionReassignments, 0..=1, |shard, call, body| {
    ready(alter_partition_reassignments(shard, &call.context, body).await)
});
