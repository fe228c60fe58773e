//! DescribeConfigs: a topic's effective configs (its overrides, else the broker's defaults)
//! and the broker's own settings.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::topic_config::{describe_topic_configs, topic_config};
use crate::shard::Shard;
use crate::storage::FlushPolicy;
use spindle_protocol::ErrorCode;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's ConfigSource and ConfigType values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

/// `(name, value, source)`.
type ConfigEntry = (String, String, i8);

/// Kafka's config type of a topic config (from the table) or of a broker config.
fn config_type(key: &str) -> i8 {
    if let Some(config) = topic_config(key) {
        return config.config_type.code();
    }
    match key {
        "log.flush.policy" => TYPE_STRING,
        "num.partitions" => TYPE_INT,
        "auto.create.topics.enable" => TYPE_BOOLEAN,
        _ => TYPE_LONG,
    }
}

pub fn describe_configs(
    shard: &Shard,
    context: &RequestContext,
    request: DescribeConfigsRequest,
) -> Response {
    let snapshot = shard.snapshot();
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.as_str();
            let entries: Result<Vec<ConfigEntry>, (ErrorCode, String)> = match resource
                .resource_type
            {
                RESOURCE_TOPIC => match snapshot.topic(name) {
                    Some(topic) => Ok(describe_topic_configs(&shard.config.log, &topic.configs)
                        .into_iter()
                        .map(|(key, value, is_default)| {
                            let source = if is_default {
                                SOURCE_DEFAULT
                            } else {
                                SOURCE_TOPIC
                            };
                            (key, value, source)
                        })
                        .collect()),
                    None => Err((
                        ErrorCode::UnknownTopicOrPartition,
                        format!("no topic '{name}'"),
                    )),
                },
                RESOURCE_BROKER if name.is_empty() || name.parse::<u32>().is_ok() => {
                    Ok(broker_configs(shard))
                }
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("resource type {other} '{name}' is not served"),
                )),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match entries {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .filter(|(key, _, _)| {
                            resource.configuration_keys.as_ref().is_none_or(|keys| {
                                // Null or empty asks for every config.
                                keys.is_empty() || keys.iter().any(|k| k.as_str() == key)
                            })
                        })
                        .map(|(key, value, source)| {
                            // config_type exists from v3.
                            let config_type = if context.api_version >= 3 {
                                config_type(&key)
                            } else {
                                0
                            };
                            DescribeConfigsResourceResult::default()
                                .with_config_type(config_type)
                                .with_name(StrBytes::from_string(key))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_read_only(source != SOURCE_TOPIC)
                                .with_config_source(source)
                        })
                        .collect(),
                ),
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    context.respond(ResponseKind::DescribeConfigs(
        DescribeConfigsResponse::default().with_results(results),
    ))
}

fn broker_configs(shard: &Shard) -> Vec<ConfigEntry> {
    let config = &shard.config;
    let flush = match config.log.flush {
        FlushPolicy::Always => "always".to_string(),
        FlushPolicy::Interval { interval, .. } => format!("interval:{}ms", interval.as_millis()),
        FlushPolicy::Never => "never".to_string(),
    };
    [
        ("log.segment.bytes", config.log.segment_bytes.to_string()),
        ("log.retention.ms", config.log.retention_ms.to_string()),
        (
            "log.retention.bytes",
            config.log.retention_bytes.to_string(),
        ),
        ("num.partitions", config.default_partitions.to_string()),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
        ),
        ("message.max.bytes", config.log.batch_bytes_max.to_string()),
        (
            "socket.request.max.bytes",
            config.request_bytes_max.to_string(),
        ),
        ("log.flush.policy", flush),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value, SOURCE_STATIC_BROKER))
    .collect()
}

served!(DescribeConfigs, 1..=4, |shard, call, body| {
    ready(describe_configs(shard, &call.context, body))
});
