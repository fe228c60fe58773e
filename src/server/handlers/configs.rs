//! DescribeConfigs: a topic's effective configs (its overrides, else the broker's defaults,
//! dynamic or set at start), and a broker's: its start-time settings and its dynamic
//! configs (`broker_config`) with where each value comes from, and on request Kafka's
//! synonyms: every other place a value of the same config is set.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::broker_config::{
    DYNAMIC_BROKER_CONFIGS, config_synonyms, dynamic_broker_config, dynamic_value,
};
use crate::cluster::metadata::ClusterSnapshot;
use crate::cluster::topic_config::{ConfigSource, topic_config};
use crate::shard::Shard;
use crate::storage::{FlushPolicy, LogConfig};
use spindle_protocol::ErrorCode;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's ConfigType values of the broker settings outside the topic table.
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;

/// `(name, value, source)`.
type ConfigEntry = (String, String, ConfigSource);

/// Kafka's config type of a topic config (from the table), a dynamic broker config (its
/// topic config's) or another broker setting.
fn config_type(key: &str) -> i8 {
    if let Some(config) = topic_config(key).or_else(|| dynamic_broker_config(key)) {
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
    let local = snapshot.local_broker(shard.core);
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let name = resource.resource_name.as_str();
            let entries: Result<Vec<ConfigEntry>, (ErrorCode, String)> =
                match resource.resource_type {
                    RESOURCE_TOPIC => match snapshot.topic(name) {
                        Some(topic) => {
                            Ok(snapshot.describe_topic_configs(&shard.config.log, local, topic))
                        }
                        None => Err((
                            ErrorCode::UnknownTopicOrPartition,
                            format!("no topic '{name}'"),
                        )),
                    },
                    // Kafka's `--entity-default`: the cluster-wide dynamic configs set.
                    RESOURCE_BROKER if name.is_empty() => Ok(snapshot
                        .broker_configs
                        .get(&None)
                        .into_iter()
                        .flatten()
                        .map(|(key, value)| {
                            (
                                key.clone(),
                                value.clone(),
                                ConfigSource::DynamicDefaultBroker,
                            )
                        })
                        .collect()),
                    RESOURCE_BROKER => match name.parse::<u32>() {
                        Ok(broker) => Ok(broker_configs(shard, &snapshot, broker)),
                        Err(_) => Err((
                            ErrorCode::InvalidRequest,
                            format!("a broker id is an integer, not '{name}'"),
                        )),
                    },
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
                            let read_only = resource.resource_type == RESOURCE_BROKER
                                && dynamic_broker_config(&key).is_none();
                            // Synonyms exist from v1, when asked for.
                            let synonyms = if request.include_synonyms {
                                synonyms(
                                    shard,
                                    &snapshot,
                                    resource.resource_type,
                                    name,
                                    (&key, &value, source),
                                )
                            } else {
                                Vec::new()
                            };
                            DescribeConfigsResourceResult::default()
                                .with_config_type(config_type)
                                .with_name(StrBytes::from_string(key))
                                .with_value(Some(StrBytes::from_string(value)))
                                .with_read_only(read_only)
                                .with_config_source(source.code())
                                .with_synonyms(synonyms)
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

/// Kafka's synonyms of one entry of resource `name`: where else a value of it is set, the
/// one in force first.
fn synonyms(
    shard: &Shard,
    snapshot: &ClusterSnapshot,
    resource_type: i8,
    name: &str,
    (key, value, source): (&str, &str, ConfigSource),
) -> Vec<DescribeConfigsSynonym> {
    let local = snapshot.local_broker(shard.core);
    let synonyms = match (resource_type, name.parse::<u32>()) {
        (RESOURCE_TOPIC, _) => {
            let topic_value = snapshot
                .topic(name)
                .and_then(|topic| topic.configs.get(key).cloned());
            let (broker_configs, flags) = (&snapshot.broker_configs, &shard.config.log);
            config_synonyms(flags, broker_configs, local, key, topic_value.as_deref())
        }
        (_, Ok(broker)) => match DYNAMIC_BROKER_CONFIGS.iter().find(|(k, _)| *k == key) {
            Some((_, topic_name)) => config_synonyms(
                &shard.config.log,
                &snapshot.broker_configs,
                broker,
                topic_name,
                None,
            ),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let synonyms = if synonyms.is_empty() {
        vec![(key.to_string(), value.to_string(), source)]
    } else {
        synonyms
    };
    synonyms
        .into_iter()
        .map(|(name, value, source)| {
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_source(source.code())
        })
        .collect()
}

/// Broker `broker`'s settings: the start-time ones that never change while it runs, then
/// every dynamic config with its value in force and where that comes from.
fn broker_configs(shard: &Shard, snapshot: &ClusterSnapshot, broker: u32) -> Vec<ConfigEntry> {
    let config = &shard.config;
    let flush = match config.log.flush {
        FlushPolicy::Always => "always".to_string(),
        FlushPolicy::Interval { interval, .. } => format!("interval:{}ms", interval.as_millis()),
        FlushPolicy::Never => "never".to_string(),
    };
    let start_time = [
        ("num.partitions", config.default_partitions.to_string()),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
        ),
        (
            "socket.request.max.bytes",
            config.request_bytes_max.to_string(),
        ),
        ("log.flush.policy", flush),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_string(), value, ConfigSource::StaticBroker));
    let in_force = snapshot.log_defaults(&config.log, broker);
    let dynamic = DYNAMIC_BROKER_CONFIGS.iter().map(|(key, topic_name)| {
        let topic_config = topic_config(topic_name).expect("every synonym is a topic config");
        let (value, source) = match dynamic_value(&snapshot.broker_configs, broker, key) {
            Some((value, source)) => (value.to_string(), source),
            None => {
                let value = (topic_config.default)(&in_force);
                let source = if value == (topic_config.default)(&LogConfig::DEFAULT) {
                    ConfigSource::Default
                } else {
                    ConfigSource::StaticBroker
                };
                (value, source)
            }
        };
        (key.to_string(), value, source)
    });
    start_time.chain(dynamic).collect()
}

served!(DescribeConfigs, 1..=4, |shard, call, body| {
    ready(describe_configs(shard, &call.context, body))
});
