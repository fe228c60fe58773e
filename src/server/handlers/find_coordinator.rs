//! FindCoordinator: the broker (a core of some node) that coordinates a group. Transactional ids are refused
//! until transactions are served. Runs on the receiving core.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::group_lookup::{coordinator_of, text};
use super::{RequestContext, Response, ready};
use crate::cluster::control::{ControllerRequest, NewTopic};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) const KEY_TYPE_GROUP: i8 = 0;

pub async fn find_coordinator(
    shard: &Shard,
    context: &RequestContext,
    request: FindCoordinatorRequest,
) -> Response {
    if request.key_type == KEY_TYPE_GROUP {
        create_offsets_topic(shard).await;
    }
    let snapshot = shard.snapshot();
    let locate = |key: &str| -> (ErrorCode, i32, StrBytes, i32) {
        if request.key_type != KEY_TYPE_GROUP {
            // Until transactions are served, a transactional producer must fail at once.
            // COORDINATOR_NOT_AVAILABLE is retriable: clients retry it until their own
            // timeout (15-60 s). Every client treats this one as fatal.
            return (
                ErrorCode::TransactionalIdAuthorizationFailed,
                -1,
                StrBytes::default(),
                -1,
            );
        }
        if key.is_empty() {
            return (ErrorCode::InvalidGroupId, -1, StrBytes::default(), -1);
        }
        match coordinator_of(shard, &snapshot, key) {
            Some(broker) => (
                ErrorCode::None,
                broker.id as i32,
                text(&broker.host),
                i32::from(broker.port),
            ),
            None => (
                ErrorCode::CoordinatorNotAvailable,
                -1,
                StrBytes::default(),
                -1,
            ),
        }
    };
    let response = if context.api_version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let (error, node, host, port) = locate(key.as_str());
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(host)
                        .with_port(port)
                        .with_error_code(error.code())
                        .with_error_message(refusal(error))
                })
                .collect(),
        )
    } else {
        let (error, node, host, port) = locate(request.key.as_str());
        FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_error_message(refusal(error).filter(|_| context.api_version >= 1))
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port)
    };
    context.respond(ResponseKind::FindCoordinator(response))
}

/// The message beside a refused transaction coordinator lookup.
pub(super) fn refusal(error: ErrorCode) -> Option<StrBytes> {
    (error == ErrorCode::TransactionalIdAuthorizationFailed)
        .then(|| StrBytes::from_static_str("transactions are not supported by this broker yet"))
}

/// In a cluster, creates `__consumer_offsets` if it does not exist yet, as Kafka does at
/// the first group lookup: compacted, so it keeps the latest record of each group and
/// committed offset; it fails while fewer nodes are live than its replication factor.
async fn create_offsets_topic(shard: &Shard) {
    if shard.config.quorum.is_none() || shard.snapshot().topic(OFFSETS_TOPIC).is_some() {
        return;
    }
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        partitions: shard.config.offsets_topic_partitions,
        replication_factor: shard.config.offsets_topic_replication_factor,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            // Kafka's `offsets.topic.segment.bytes`.
            ("segment.bytes".into(), Some((100 << 20).to_string())),
        ],
    };
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::CreateTopics {
            topics: vec![topic],
            validate_only: false,
        })
        .await;
    for outcome in outcomes {
        match outcome.result {
            Ok(_) => tracing::info!(core = shard.core, "created {OFFSETS_TOPIC}"),
            Err((ErrorCode::TopicAlreadyExists, _)) => {}
            Err((code, message)) => tracing::warn!(
                core = shard.core,
                "creating {OFFSETS_TOPIC} failed: {code:?} {message}"
            ),
        }
    }
}

served!(FindCoordinator, 0..=4, |shard, call, body| {
    ready(find_coordinator(shard, &call.context, body).await)
});
