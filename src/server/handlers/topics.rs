//! CreateTopics, DeleteTopics and CreatePartitions: translated into controller requests
//! (core 0 decides, persists and pushes the new snapshot to every core before answering).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response};
use crate::cluster::control::{ControllerRequest, NewTopic, TopicOutcome};
use crate::cluster::metadata::describe_topic_configs;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// Kafka's ConfigSource values.
const CONFIG_SOURCE_TOPIC: i8 = 1;
const CONFIG_SOURCE_DEFAULT: i8 = 5;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn split(outcome: &TopicOutcome) -> (ErrorCode, Option<StrBytes>) {
    match &outcome.result {
        Ok(_) => (ErrorCode::None, None),
        Err((code, message)) => (*code, Some(StrBytes::from_string(message.clone()))),
    }
}

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
                    let configs = describe_topic_configs(&shard.config.log, &topic.configs)
                        .into_iter()
                        .map(|(key, value, is_default)| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(key))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_config_source(if is_default {
                                    CONFIG_SOURCE_DEFAULT
                                } else {
                                    CONFIG_SOURCE_TOPIC
                                })
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

pub async fn delete_topics(
    shard: &Shard,
    context: &RequestContext,
    request: DeleteTopicsRequest,
) -> Response {
    let snapshot = shard.snapshot();
    // v6 names topics by name or id; earlier versions by name only.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|name| (Some(name.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    wanted.extend(request.topics.iter().map(|topic| {
        let name = match &topic.name {
            Some(name) => Some(name.as_str().to_string()),
            None => snapshot
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone()),
        };
        (name, topic.topic_id)
    }));
    let names: Vec<String> = wanted.iter().filter_map(|(name, _)| name.clone()).collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::DeleteTopics { names })
        .await;
    let mut outcomes = outcomes.into_iter();
    // topic_id from v6, error_message from v5.
    let version = context.api_version;
    let id_if_served = |id: uuid::Uuid| if version >= 6 { id } else { uuid::Uuid::nil() };
    let responses = wanted
        .into_iter()
        .map(|(name, topic_id)| match name {
            None => DeletableTopicResult::default()
                .with_topic_id(id_if_served(topic_id))
                .with_error_code(ErrorCode::UnknownTopicId.code()),
            Some(name) => {
                let outcome = outcomes.next();
                let (code, message) = outcome
                    .as_ref()
                    .map(split)
                    .unwrap_or((ErrorCode::UnknownServerError, None));
                let topic_id = match outcome.as_ref().map(|o| &o.result) {
                    Some(Ok(Some(topic))) => topic.topic_id,
                    _ => topic_id,
                };
                DeletableTopicResult::default()
                    .with_name(Some(topic_name(&name)))
                    .with_topic_id(id_if_served(topic_id))
                    .with_error_code(code.code())
                    .with_error_message(message.filter(|_| version >= 5))
            }
        })
        .collect();
    context.respond(ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default().with_responses(responses),
    ))
}

pub async fn create_partitions(
    shard: &Shard,
    context: &RequestContext,
    request: CreatePartitionsRequest,
) -> Response {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let assignments = topic
                .assignments
                .iter()
                .flatten()
                .map(|assignment| assignment.broker_ids.iter().map(|id| id.0).collect())
                .collect();
            (topic.name.as_str().to_string(), topic.count, assignments)
        })
        .collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::CreatePartitions {
            topics,
            validate_only: request.validate_only,
        })
        .await;
    let results = outcomes
        .iter()
        .map(|outcome| {
            let (code, message) = split(outcome);
            CreatePartitionsTopicResult::default()
                .with_name(topic_name(&outcome.name))
                .with_error_code(code.code())
                .with_error_message(message)
        })
        .collect();
    context.respond(ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default().with_results(results),
    ))
}
