//! CreateTopics: through the controller on core 0; answered once every core has the topic.

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::topic_outcomes::{split, topic_name};
use super::{RequestContext, Response, ready};
use crate::cluster::control::{ControllerRequest, NewTopic};
use crate::shard::Shard;

pub async fn create_topics(
    shard: &Shard,
    context: &RequestContext,
    request: CreateTopicsRequest,
) -> Response {
    let topics = request
        .topics
        .iter()
        .map(|topic| NewTopic {
            name: topic.name.as_str().to_string(),
            partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|assignment| assignment.broker_ids.iter().map(|id| id.0).collect())
                .collect(),
            configs: topic
                .configs
                .iter()
                .map(|config| {
                    (
                        config.name.as_str().to_string(),
                        config.value.as_ref().map(|v| v.as_str().to_string()),
                    )
                })
                .collect(),
        })
        .collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::CreateTopics {
            topics,
            validate_only: request.validate_only,
        })
        .await;
    let snapshot = shard.snapshot();
    let local = snapshot.local_broker(shard.core);
    let results = outcomes
        .iter()
        .map(|outcome| {
            let (code, message) = split(outcome);
            // error_message from v1; counts and configs from v5; topic_id from v7.
            let version = context.api_version;
            let result = CreatableTopicResult::default()
                .with_name(topic_name(&outcome.name))
                .with_error_code(code.code())
                .with_error_message(message.filter(|_| version >= 1));
            match &outcome.result {
                _ if version < 5 => result,
                Ok(Some(topic)) => {
                    let configs = snapshot
                        .describe_topic_configs(&shard.config.log, local, topic)
                        .into_iter()
                        .map(|(key, value, source)| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(key))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_config_source(source.code())
                        })
                        .collect();
                    let topic_id = if version >= 7 {
                        topic.topic_id
                    } else {
                        uuid::Uuid::nil()
                    };
                    result
                        .with_topic_id(topic_id)
                        .with_num_partitions(topic.partition_count())
                        .with_replication_factor(1)
                        .with_configs(Some(configs))
                }
                _ => result.with_num_partitions(-1).with_replication_factor(-1),
            }
        })
        .collect();
    context.respond(ResponseKind::CreateTopics(
        CreateTopicsResponse::default().with_topics(results),
    ))
}

served!(CreateTopics, 2..=7, |shard, call, body| {
    ready(create_topics(shard, &call.context, body).await)
});
