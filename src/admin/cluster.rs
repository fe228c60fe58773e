//! `spindle cluster info` and `spindle cluster config get|set`: the cluster's id,
//! controller and brokers (Metadata), and the brokers' configs (DescribeConfigs and
//! IncrementalAlterConfigs on the broker resource: `set` changes the cluster-wide dynamic
//! configs, as `rpk cluster config set` does, or one broker's with `--broker`; settings
//! that are not dynamic are refused by the broker). Main thread.

use std::process::ExitCode;

use clap::Subcommand;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::{Connection, Output, Table, client, error_text, key_value, print};

/// Kafka's ConfigResource type of a broker.
const RESOURCE_BROKER: i8 = 4;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// A broker's configs (all, or the keys named).
    Get {
        keys: Vec<String>,
        /// The broker (default: the one --brokers reaches first in the metadata).
        #[arg(long)]
        broker: Option<i32>,
    },
    /// Changes dynamic broker configs (key=value...): the whole cluster's, or one broker's.
    Set {
        #[arg(required = true, value_parser = key_value)]
        pairs: Vec<(String, String)>,
        /// Only this broker (default: every broker, Kafka's cluster-wide default).
        #[arg(long)]
        broker: Option<i32>,
    },
}

/// The broker a config command is about: the one named, else the first listed.
fn broker_id(cluster: &mut client::Cluster, named: Option<i32>) -> Result<i32, String> {
    match named {
        Some(id) => Ok(id),
        None => cluster
            .broker_ids()
            .first()
            .copied()
            .ok_or_else(|| "the cluster lists no broker".to_string()),
    }
}

pub fn config(command: &ConfigCommand, connection: &Connection) -> ExitCode {
    print(
        &connection.format,
        config_output(command, &connection.brokers),
    )
}

fn config_output(command: &ConfigCommand, brokers: &str) -> Result<Output, String> {
    let mut cluster = client::Cluster::connect(brokers)?;
    match command {
        ConfigCommand::Get { keys, broker } => {
            let id = broker_id(&mut cluster, *broker)?;
            let response: DescribeConfigsResponse = cluster.broker(id)?.call(
                ApiKey::DescribeConfigs,
                4,
                &DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(RESOURCE_BROKER)
                        .with_resource_name(StrBytes::from_string(id.to_string()))
                        .with_configuration_keys((!keys.is_empty()).then(|| {
                            keys.iter()
                                .map(|k| StrBytes::from_string(k.clone()))
                                .collect()
                        })),
                ]),
            )?;
            let result = response.results.first().ok_or("no answer for the broker")?;
            if result.error_code != 0 {
                return Err(format!("broker {id}: {}", error_text(result.error_code)));
            }
            let mut table = Table::new(None, vec!["KEY", "VALUE", "SOURCE"]);
            let mut json = serde_json::Map::new();
            let mut entries: Vec<_> = result.configs.iter().collect();
            entries.sort_by_key(|c| c.name.to_string());
            for entry in entries {
                let value = entry.value.as_ref().map(|v| v.to_string());
                table.rows.push(vec![
                    entry.name.to_string(),
                    value.clone().unwrap_or_default(),
                    source_name(entry.config_source).to_string(),
                ]);
                json.insert(entry.name.to_string(), json!(value));
            }
            Ok(Output {
                json: json.into(),
                sections: vec![table],
                failed: false,
            })
        }
        ConfigCommand::Set { pairs, broker } => {
            // A broker's own configs go to that broker (Kafka checks the id is its own);
            // the cluster-wide ones (resource name "") to any.
            let id = broker_id(&mut cluster, *broker)?;
            let resource_name = broker.map(|id| id.to_string()).unwrap_or_default();
            let response: IncrementalAlterConfigsResponse = cluster.broker(id)?.call(
                ApiKey::IncrementalAlterConfigs,
                1,
                &IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(RESOURCE_BROKER)
                        .with_resource_name(StrBytes::from_string(resource_name))
                        .with_configs(
                            pairs
                                .iter()
                                .map(|(key, value)| {
                                    AlterableConfig::default()
                                        .with_name(StrBytes::from_string(key.clone()))
                                        .with_config_operation(0)
                                        .with_value(Some(StrBytes::from_string(value.clone())))
                                })
                                .collect(),
                        ),
                ]),
            )?;
            let answer = response
                .responses
                .first()
                .ok_or("no answer for the broker")?;
            let code = answer.error_code;
            let message = answer.error_message.as_ref().map(|m| m.to_string());
            let mut table = Table::new(None, vec!["BROKER", "RESULT"]);
            let mut text = error_text(code);
            if let Some(message) = &message {
                text.push_str(&format!(": {message}"));
            }
            let scope = broker.map_or("all".to_string(), |id| id.to_string());
            table.rows.push(vec![scope.clone(), text]);
            Ok(Output {
                json: json!([{"broker": scope, "error": (code != 0).then(|| error_text(code)), "message": message}]),
                sections: vec![table],
                failed: code != 0,
            })
        }
    }
}

/// Kafka's DescribeConfigs `ConfigSource`, as `kafka-configs --describe` names it.
fn source_name(code: i8) -> &'static str {
    match code {
        1 => "topic",
        2 => "dynamic-broker",
        3 => "dynamic-cluster-default",
        4 => "static",
        5 => "default",
        _ => "unknown",
    }
}

/// `spindle cluster info`: the cluster id, controller and brokers.
pub fn cluster_info(connection: &Connection) -> ExitCode {
    print(&connection.format, cluster_info_output(connection))
}

fn cluster_info_output(connection: &Connection) -> Result<Output, String> {
    let mut cluster = client::Cluster::connect(&connection.brokers)?;
    let metadata = cluster.metadata(Some(Vec::new()))?;
    let cluster_id = metadata.cluster_id.as_ref().map(|id| id.to_string());
    let mut summary = Table::new(Some("CLUSTER"), vec!["ID", "CONTROLLER"]);
    summary.rows.push(vec![
        cluster_id.clone().unwrap_or_default(),
        metadata.controller_id.0.to_string(),
    ]);
    let mut brokers = Table::new(Some("BROKERS"), vec!["ID", "HOST", "PORT", "RACK"]);
    let mut json_brokers = Vec::new();
    for broker in &metadata.brokers {
        let rack = broker.rack.as_ref().map(|r| r.to_string());
        brokers.rows.push(vec![
            broker.node_id.0.to_string(),
            broker.host.to_string(),
            broker.port.to_string(),
            rack.clone().unwrap_or_default(),
        ]);
        json_brokers.push(serde_json::json!({
            "id": broker.node_id.0,
            "host": broker.host.to_string(),
            "port": broker.port,
            "rack": rack,
        }));
    }
    Ok(Output {
        json: serde_json::json!({
            "cluster_id": cluster_id,
            "controller": metadata.controller_id.0,
            "brokers": json_brokers,
        }),
        sections: vec![summary, brokers],
        failed: false,
    })
}
