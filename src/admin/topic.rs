//! `spindle topic create|list|describe|delete|add-partitions|alter-config`, through
//! CreateTopics, Metadata, DescribeConfigs, ListOffsets, DeleteTopics, CreatePartitions and
//! IncrementalAlterConfigs. Main thread.

use clap::Subcommand;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use std::process::ExitCode;

use super::client::Cluster;
use super::records;
use super::{Connection, Format, Output, Table, error_text, key_value, print};

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Creates topics.
    Create {
        #[arg(required = true)]
        names: Vec<String>,
        /// Partitions (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replicas of each partition (-1: the broker's default).
        #[arg(short, long, default_value_t = -1)]
        replicas: i16,
        /// A topic config, key=value (repeatable).
        #[arg(short = 'c', long = "topic-config", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// Lists the topics with their partition and replica counts.
    List,
    /// A topic's partitions (leader, replicas, in-sync replicas, offsets) and configs.
    Describe { name: String },
    /// Deletes topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Adds partitions to a topic.
    AddPartitions {
        name: String,
        /// How many partitions to add.
        #[arg(long)]
        num: i32,
    },
    /// Sends each line of stdin as a record (to the key's partition, or in turn).
    Produce {
        name: String,
        /// The key of every record.
        #[arg(short, long, conflicts_with = "separator")]
        key: Option<String>,
        /// Each line is KEY SEPARATOR VALUE.
        #[arg(long)]
        separator: Option<String>,
        /// Every record to this partition.
        #[arg(short, long)]
        partition: Option<i32>,
        /// all, 1 or 0.
        #[arg(long, default_value = "all", value_parser = parse_acks)]
        acks: i16,
    },
    /// Prints records: from --offset start|end|N|@timestamp-ms (or the --group's committed
    /// offsets, committing where it stops), up to the end there was at start (--follow: keep
    /// waiting), or --num records. --format text (values), json (a line per record), or a
    /// template: %v %k %p %o %d (timestamp) %t (topic), \n, \t.
    Consume {
        name: String,
        #[arg(short, long, default_value = "start", value_parser = records::StartAt::parse)]
        offset: records::StartAt,
        /// Only these partitions (repeatable).
        #[arg(short, long)]
        partition: Vec<i32>,
        #[arg(short, long)]
        num: Option<u64>,
        /// Consume as a member of this group: it reads the partitions the group assigns
        /// it, from the committed offsets, and commits where it stops. With --partition it
        /// reads those instead and commits for the group without joining it.
        #[arg(short, long)]
        group: Option<String>,
        #[arg(long)]
        follow: bool,
    },
    /// Changes a topic's configs live: --set key=value, --delete key (back to the default).
    AlterConfig {
        name: String,
        #[arg(long = "set", value_parser = key_value)]
        set: Vec<(String, String)>,
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => Err(format!("'{other}' is not all, 1 or 0")),
    }
}

/// Runs a topic command and prints what it produced; `consume` prints records as they come.
pub fn run_command(command: &TopicCommand, connection: &Connection) -> ExitCode {
    let format = &connection.format;
    if let Format::Template(_) = format
        && !matches!(command, TopicCommand::Consume { .. })
    {
        eprintln!("spindle: a record template only applies to topic consume");
        return ExitCode::from(2);
    }
    match command {
        TopicCommand::Produce {
            name: topic,
            key,
            separator,
            partition,
            acks,
        } => {
            let options = records::ProduceOptions {
                key: key.as_deref(),
                separator: separator.as_deref(),
                partition: *partition,
                acks: *acks,
            };
            let result = Cluster::connect(&connection.brokers).and_then(|mut cluster| {
                records::produce(&mut cluster, topic, &options, &mut std::io::stdin().lock())
            });
            print(format, result)
        }
        TopicCommand::Consume {
            name: topic,
            offset,
            partition,
            num,
            group,
            follow,
        } => {
            let options = records::ConsumeOptions {
                start: offset.clone(),
                partitions: partition,
                num: *num,
                group: group.as_deref(),
                follow: *follow,
            };
            let stdout = std::io::stdout();
            let result = Cluster::connect(&connection.brokers).and_then(|mut cluster| {
                records::consume(&mut cluster, topic, &options, format, &mut stdout.lock())
            });
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(reason) => {
                    eprintln!("spindle: {reason}");
                    ExitCode::from(1)
                }
            }
        }
        _ => print(format, run(command, &connection.brokers)),
    }
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// One `NAME RESULT` row per item, and the same as JSON; failed if any item failed.
fn results(title: &'static str, items: Vec<(String, i16, Option<String>)>) -> Output {
    let mut table = Table::new(None, vec![title, "RESULT"]);
    let mut json = Vec::new();
    let mut failed = false;
    for (item, code, message) in items {
        failed |= code != 0;
        let mut text = error_text(code);
        if let Some(message) = &message {
            text.push_str(&format!(": {message}"));
        }
        table.rows.push(vec![item.clone(), text]);
        json.push(json!({"name": item, "error": (code != 0).then(|| error_text(code)), "message": message}));
    }
    Output {
        json: json.into(),
        sections: vec![table],
        failed,
    }
}

pub fn run(command: &TopicCommand, brokers: &str) -> Result<Output, String> {
    let mut cluster = Cluster::connect(brokers)?;
    match command {
        TopicCommand::Create {
            names,
            partitions,
            replicas,
            configs,
        } => {
            let topics = names
                .iter()
                .map(|topic| {
                    CreatableTopic::default()
                        .with_name(name(topic))
                        .with_num_partitions(*partitions)
                        .with_replication_factor(*replicas)
                        .with_configs(
                            configs
                                .iter()
                                .map(|(key, value)| {
                                    CreatableTopicConfig::default()
                                        .with_name(s(key))
                                        .with_value(Some(s(value)))
                                })
                                .collect(),
                        )
                })
                .collect();
            let response: CreateTopicsResponse = cluster.bootstrap.call(
                ApiKey::CreateTopics,
                7,
                &CreateTopicsRequest::default()
                    .with_topics(topics)
                    .with_timeout_ms(30_000),
            )?;
            Ok(results(
                "TOPIC",
                response
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            t.name.to_string(),
                            t.error_code,
                            t.error_message.as_ref().map(|m| m.to_string()),
                        )
                    })
                    .collect(),
            ))
        }
        TopicCommand::List => {
            let metadata = cluster.metadata(None)?;
            let mut table = Table::new(None, vec!["NAME", "PARTITIONS", "REPLICAS"]);
            let mut json = Vec::new();
            let mut topics: Vec<_> = metadata.topics.iter().collect();
            topics.sort_by_key(|t| t.name.as_ref().map(|n| n.to_string()));
            for topic in topics {
                let topic_name = topic
                    .name
                    .as_ref()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                let replicas = topic
                    .partitions
                    .first()
                    .map_or(0, |p| p.replica_nodes.len());
                table.rows.push(vec![
                    topic_name.clone(),
                    topic.partitions.len().to_string(),
                    replicas.to_string(),
                ]);
                json.push(json!({"name": topic_name, "partitions": topic.partitions.len(), "replicas": replicas, "internal": topic.is_internal}));
            }
            Ok(Output {
                json: json.into(),
                sections: vec![table],
                failed: false,
            })
        }
        TopicCommand::Describe { name: topic } => describe(&mut cluster, topic),
        TopicCommand::Produce { .. } | TopicCommand::Consume { .. } => {
            unreachable!("run_command runs these")
        }
        TopicCommand::Delete { names } => {
            let response: DeleteTopicsResponse = cluster.bootstrap.call(
                ApiKey::DeleteTopics,
                6,
                &DeleteTopicsRequest::default()
                    .with_topics(
                        names
                            .iter()
                            .map(|topic| DeleteTopicState::default().with_name(Some(name(topic))))
                            .collect(),
                    )
                    .with_timeout_ms(30_000),
            )?;
            Ok(results(
                "TOPIC",
                response
                    .responses
                    .iter()
                    .map(|r| {
                        (
                            r.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                            r.error_code,
                            r.error_message.as_ref().map(|m| m.to_string()),
                        )
                    })
                    .collect(),
            ))
        }
        TopicCommand::AddPartitions { name: topic, num } => {
            let metadata = cluster.metadata(Some(vec![topic.clone()]))?;
            let current = metadata
                .topics
                .first()
                .filter(|t| t.error_code == 0)
                .map(|t| t.partitions.len() as i32)
                .ok_or_else(|| format!("no topic '{topic}'"))?;
            let response: CreatePartitionsResponse = cluster.bootstrap.call(
                ApiKey::CreatePartitions,
                3,
                &CreatePartitionsRequest::default()
                    .with_topics(vec![
                        CreatePartitionsTopic::default()
                            .with_name(name(topic))
                            .with_count(current + num),
                    ])
                    .with_timeout_ms(30_000),
            )?;
            Ok(results(
                "TOPIC",
                response
                    .results
                    .iter()
                    .map(|r| {
                        (
                            r.name.to_string(),
                            r.error_code,
                            r.error_message.as_ref().map(|m| m.to_string()),
                        )
                    })
                    .collect(),
            ))
        }
        TopicCommand::AlterConfig {
            name: topic,
            set,
            delete,
        } => {
            if set.is_empty() && delete.is_empty() {
                return Err("alter-config wants --set key=value or --delete key".into());
            }
            let configs = set
                .iter()
                .map(|(key, value)| (key, 0i8, Some(value)))
                .chain(delete.iter().map(|key| (key, 1i8, None)))
                .map(|(key, op, value)| {
                    AlterableConfig::default()
                        .with_name(s(key))
                        .with_config_operation(op)
                        .with_value(value.map(|v| s(v)))
                })
                .collect();
            let response: IncrementalAlterConfigsResponse = cluster.bootstrap.call(
                ApiKey::IncrementalAlterConfigs,
                1,
                &IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(topic))
                        .with_configs(configs),
                ]),
            )?;
            Ok(results(
                "TOPIC",
                response
                    .responses
                    .iter()
                    .map(|r| {
                        (
                            r.resource_name.to_string(),
                            r.error_code,
                            r.error_message.as_ref().map(|m| m.to_string()),
                        )
                    })
                    .collect(),
            ))
        }
    }
}

/// The log start and the high watermark of `partition`, from its leader.
pub(super) fn offsets(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    leader: i32,
) -> Result<(i64, i64), String> {
    let client = cluster.broker(leader)?;
    Ok((
        records::offset_at(client, topic, partition, -2)?,
        records::offset_at(client, topic, partition, -1)?,
    ))
}

fn describe(cluster: &mut Cluster, topic: &str) -> Result<Output, String> {
    let metadata = cluster.metadata(Some(vec![topic.to_string()]))?;
    let found = metadata
        .topics
        .first()
        .ok_or_else(|| format!("no topic '{topic}'"))?;
    if found.error_code != 0 {
        return Err(format!("topic '{topic}': {}", error_text(found.error_code)));
    }
    let mut summary = Table::new(
        Some("SUMMARY"),
        vec!["NAME", "ID", "PARTITIONS", "INTERNAL"],
    );
    summary.rows.push(vec![
        topic.to_string(),
        found.topic_id.to_string(),
        found.partitions.len().to_string(),
        found.is_internal.to_string(),
    ]);
    let mut partitions = Table::new(
        Some("PARTITIONS"),
        vec![
            "PARTITION",
            "LEADER",
            "EPOCH",
            "REPLICAS",
            "IN-SYNC",
            "LOG-START",
            "HIGH-WATERMARK",
        ],
    );
    let mut json_partitions = Vec::new();
    let mut sorted: Vec<_> = found.partitions.iter().collect();
    sorted.sort_by_key(|p| p.partition_index);
    for partition in sorted {
        let ids = |ids: &[BrokerId]| ids.iter().map(|id| id.0).collect::<Vec<i32>>();
        let (start, end) = offsets(
            cluster,
            topic,
            partition.partition_index,
            partition.leader_id.0,
        )?;
        let replicas = ids(&partition.replica_nodes);
        let in_sync = ids(&partition.isr_nodes);
        partitions.rows.push(vec![
            partition.partition_index.to_string(),
            partition.leader_id.0.to_string(),
            partition.leader_epoch.to_string(),
            format!("{replicas:?}"),
            format!("{in_sync:?}"),
            start.to_string(),
            end.to_string(),
        ]);
        json_partitions.push(json!({
            "partition": partition.partition_index,
            "leader": partition.leader_id.0,
            "leader_epoch": partition.leader_epoch,
            "replicas": replicas,
            "in_sync_replicas": in_sync,
            "log_start_offset": start,
            "high_watermark": end,
        }));
    }
    let response: DescribeConfigsResponse = cluster.bootstrap.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic))
                .with_configuration_keys(None),
        ]),
    )?;
    let mut configs = Table::new(Some("CONFIGS"), vec!["KEY", "VALUE", "SOURCE"]);
    let mut json_configs = serde_json::Map::new();
    if let Some(result) = response.results.first() {
        let mut entries: Vec<_> = result.configs.iter().collect();
        entries.sort_by_key(|c| c.name.to_string());
        for entry in entries {
            let value = entry
                .value
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default();
            let source = match entry.config_source {
                1 => "topic",
                4 | 5 => "default",
                _ => "broker",
            };
            configs.rows.push(vec![
                entry.name.to_string(),
                value.clone(),
                source.to_string(),
            ]);
            json_configs.insert(
                entry.name.to_string(),
                json!({"value": value, "source": source}),
            );
        }
    }
    Ok(Output {
        json: json!({
            "name": topic,
            "id": found.topic_id.to_string(),
            "internal": found.is_internal,
            "partitions": json_partitions,
            "configs": json_configs,
        }),
        sections: vec![summary, partitions, configs],
        failed: false,
    })
}
