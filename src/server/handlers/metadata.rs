//! Metadata: every core is a broker (node id = core index) on its own
//! port, and each partition's leader is the core that owns it, so clients send Produce and
//! Fetch straight to the owner. Answered from this core's snapshot; no cross-core hop
//! except to auto-create topics.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, auto_create_topics, ready};
use crate::cluster::metadata::{ClusterSnapshot, TopicMetadata, validate_topic_name};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub async fn metadata(
    shard: &Shard,
    context: &RequestContext,
    request: MetadataRequest,
) -> Response {
    // v0: an empty list means every topic; later versions use null for that.
    let requested = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && context.api_version == 0 => None,
        Some(topics) => Some(topics),
    };
    let auto_create = context.api_version < 4 || request.allow_auto_topic_creation;
    if let Some(topics) = &requested {
        let snapshot = shard.snapshot();
        let missing: Vec<String> = topics
            .iter()
            .filter_map(|topic| topic.name.as_ref())
            .map(|name| name.as_str().to_string())
            .filter(|name| snapshot.topic(name).is_none() && validate_topic_name(name).is_ok())
            .collect();
        if auto_create {
            auto_create_topics(shard, missing).await;
        }
    }
    let snapshot = shard.snapshot();
    let topics = match requested {
        None => snapshot
            .topics
            .values()
            .map(|topic| describe_topic(&snapshot, topic, context.api_version))
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|wanted| {
                let found = match &wanted.name {
                    Some(name) => snapshot.topic(name.as_str()),
                    None => snapshot.topic_by_id(&wanted.topic_id),
                };
                match found {
                    Some(topic) => describe_topic(&snapshot, topic, context.api_version),
                    None => {
                        let code = match &wanted.name {
                            Some(name) if validate_topic_name(name.as_str()).is_err() => {
                                ErrorCode::InvalidTopicException
                            }
                            Some(_) => ErrorCode::UnknownTopicOrPartition,
                            None => ErrorCode::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(wanted.name.clone())
                            .with_topic_id(wanted.topic_id)
                    }
                }
            })
            .collect(),
    };
    let brokers = snapshot
        .brokers()
        .into_iter()
        .map(|broker| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(broker.id as i32))
                .with_host(StrBytes::from_string(broker.host))
                .with_port(i32::from(broker.port))
                .with_rack((context.api_version >= 1).then(|| StrBytes::from_string(broker.rack)))
        })
        .collect();
    // Fields a version lacks must keep their defaults for the codec to encode it.
    let version = context.api_version;
    let cluster_id = (version >= 2).then(|| StrBytes::from_string(snapshot.cluster_id.clone()));
    // Any broker takes topic changes (they go through the node's controller), so each node
    // names its own first core.
    let controller_id = BrokerId(if version >= 1 {
        snapshot.local_broker(0) as i32
    } else {
        -1
    });
    context.respond(ResponseKind::Metadata(
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_cluster_id(cluster_id)
            .with_controller_id(controller_id)
            .with_topics(topics),
    ))
}

fn describe_topic(
    snapshot: &ClusterSnapshot,
    topic: &TopicMetadata,
    version: i16,
) -> MetadataResponseTopic {
    let leader_epoch = if version >= 7 { 0 } else { -1 };
    let topic_id = if version >= 10 {
        topic.topic_id
    } else {
        uuid::Uuid::nil()
    };
    let partitions = (0..topic.partition_count())
        .map(|index| {
            let owner = snapshot.owner(topic, index).unwrap_or(0);
            let replicas: Vec<u32> = std::iter::once(owner)
                .chain(snapshot.followers(topic, index))
                .collect();
            let ids = |live: bool| -> Vec<BrokerId> {
                replicas
                    .iter()
                    .filter(|&&broker| snapshot.is_live(broker) == live)
                    .map(|&broker| BrokerId(broker as i32))
                    .collect()
            };
            let offline = if version >= 5 { ids(false) } else { vec![] };
            let partition = MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_epoch(if leader_epoch >= 0 {
                    topic.leader_epoch(index)
                } else {
                    -1
                })
                .with_replica_nodes(replicas.iter().map(|&b| BrokerId(b as i32)).collect())
                .with_offline_replicas(offline);
            if snapshot.is_live(owner) {
                let in_sync = snapshot
                    .isr(topic, index)
                    .into_iter()
                    .filter(|&broker| snapshot.is_live(broker))
                    .map(|broker| BrokerId(broker as i32))
                    .collect();
                partition
                    .with_leader_id(BrokerId(owner as i32))
                    .with_isr_nodes(in_sync)
            } else {
                // Its leader's node is fenced: no leader until it returns (failover to a
                // follower is the next part of replication).
                partition
                    .with_error_code(ErrorCode::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1))
            }
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic_id)
        // Clients leave internal topics out of pattern subscriptions and listings.
        .with_is_internal(topic.name == OFFSETS_TOPIC)
        .with_partitions(partitions)
}

served!(Metadata, 0..=13, |shard, call, body| {
    ready(metadata(shard, &call.context, body).await)
});
