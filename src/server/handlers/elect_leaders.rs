//! ElectLeaders: a preferred election moves the named partitions (or every partition)
//! back to their preferred replica, as `kafka-leader-election.sh --election-type
//! preferred` asks, without waiting for the automatic rebalance. An unclean election gives
//! each named partition whose leader is down a live replica as its leader, in sync or not
//! (`--election-type unclean`). Decided by the controller (in a cluster, the quorum), like
//! every leader change. Runs on the receiving core.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::control::ControllerRequest;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// ElectLeaders' election types.
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// A partition's answer known before asking the controller (`None`: to be elected).
type Known = Option<(ErrorCode, &'static str)>;

pub async fn elect_leaders(
    shard: &Shard,
    context: &RequestContext,
    request: ElectLeadersRequest,
) -> Response {
    let snapshot = shard.snapshot();
    // Null names every partition of every topic.
    let asked: Vec<(String, Vec<i32>)> = match &request.topic_partitions {
        Some(topics) => topics
            .iter()
            .map(|t| (t.topic.as_str().to_string(), t.partitions.clone()))
            .collect(),
        None => snapshot
            .topics
            .values()
            .map(|t| (t.name.clone(), (0..t.partition_count()).collect()))
            .collect(),
    };
    // Each partition's answer as the snapshot has it; `None`: to be elected.
    let mut answers: Vec<(String, Vec<(i32, Known)>)> = asked
        .iter()
        .map(|(name, partitions)| {
            let topic = snapshot.topic(name);
            let answers = partitions
                .iter()
                .map(|&partition| {
                    let answer = match topic {
                        _ if ![PREFERRED, UNCLEAN].contains(&request.election_type) => Some((
                            ErrorCode::InvalidRequest,
                            "the election type must be 0 (preferred) or 1 (unclean)",
                        )),
                        Some(topic)
                            if request.election_type == UNCLEAN
                                && (0..topic.partition_count()).contains(&partition) =>
                        {
                            let leader = topic.partition_brokers[partition as usize];
                            if snapshot.is_live(leader) {
                                Some((ErrorCode::ElectionNotNeeded, "the partition has a leader"))
                            } else {
                                None
                            }
                        }
                        Some(topic) if (0..topic.partition_count()).contains(&partition) => {
                            let leader = topic.partition_brokers[partition as usize];
                            match topic.preferred_leader(partition) {
                                Some(preferred) if preferred == leader => Some((
                                    ErrorCode::ElectionNotNeeded,
                                    "the preferred replica leads",
                                )),
                                Some(preferred)
                                    if snapshot.is_live(preferred)
                                        && topic.isr(partition).contains(&preferred) =>
                                {
                                    None
                                }
                                _ => Some((
                                    ErrorCode::PreferredLeaderNotAvailable,
                                    "the preferred replica is not live and in sync",
                                )),
                            }
                        }
                        _ => Some((ErrorCode::UnknownTopicOrPartition, "no such partition")),
                    };
                    (partition, answer)
                })
                .collect();
            (name.clone(), answers)
        })
        .collect();
    let wanted: Vec<(String, Vec<i32>)> = answers
        .iter()
        .map(|(name, partitions)| {
            let due = partitions
                .iter()
                .filter(|(_, answer)| answer.is_none())
                .map(|(partition, _)| *partition)
                .collect();
            (name.clone(), due)
        })
        .filter(|(_, due): &(String, Vec<i32>)| !due.is_empty())
        .collect();
    let unclean = request.election_type == UNCLEAN;
    let outcomes = if wanted.is_empty() {
        Vec::new()
    } else if unclean {
        shard
            .control
            .ask_controller(ControllerRequest::ElectUncleanLeaders { partitions: wanted })
            .await
    } else {
        shard
            .control
            .ask_controller(ControllerRequest::ElectPreferredLeaders { partitions: wanted })
            .await
    };
    let results = answers
        .iter_mut()
        .map(|(name, partitions)| {
            let outcome = outcomes.iter().find(|o| &o.name == name);
            let partition_result = partitions
                .iter()
                .map(|(partition, answer)| {
                    let (code, message) = match (answer, outcome) {
                        (Some((code, message)), _) => (*code, Some(message.to_string())),
                        (None, Some(outcome)) => match &outcome.result {
                            // The controller's view decides: led by the preferred
                            // replica now, or not available there.
                            Ok(topic) if unclean => {
                                let topic = topic.clone().or_else(|| snapshot.topic(name).cloned());
                                let led = topic.is_some_and(|t| {
                                    t.partition_brokers
                                        .get(*partition as usize)
                                        .is_some_and(|&leader| snapshot.is_live(leader))
                                });
                                if led {
                                    (ErrorCode::None, None)
                                } else {
                                    (
                                        ErrorCode::EligibleLeadersNotAvailable,
                                        Some("no replica of the partition is live".into()),
                                    )
                                }
                            }
                            Ok(topic) => {
                                let topic = topic.clone().or_else(|| snapshot.topic(name).cloned());
                                let led = topic.is_some_and(|t| {
                                    t.partition_brokers.get(*partition as usize).copied()
                                        == t.preferred_leader(*partition)
                                });
                                if led {
                                    (ErrorCode::None, None)
                                } else {
                                    (
                                        ErrorCode::PreferredLeaderNotAvailable,
                                        Some(
                                            "the preferred replica is not live and in sync".into(),
                                        ),
                                    )
                                }
                            }
                            Err((code, message)) => (*code, Some(message.clone())),
                        },
                        (None, None) => (
                            ErrorCode::RequestTimedOut,
                            Some("the controller did not answer".into()),
                        ),
                    };
                    PartitionResult::default()
                        .with_partition_id(*partition)
                        .with_error_code(code.code())
                        .with_error_message(message.map(StrBytes::from_string))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_partition_result(partition_result)
        })
        .collect();
    context.respond(ResponseKind::ElectLeaders(
        ElectLeadersResponse::default().with_replica_election_results(results),
    ))
}

served!(ElectLeaders, 0..=2, |shard, call, body| {
    ready(elect_leaders(shard, &call.context, body).await)
});
