//! `spindle cluster partitions move|move-status|move-cancel`: partition reassignment on any
//! Kafka-compatible cluster (AlterPartitionReassignments, ListPartitionReassignments), in
//! the shape of rpk's `cluster partitions`: `move TOPIC -p 0:1000,2000` moves partition 0
//! to brokers 1000 and 2000 (the first one preferred as leader). Main thread.

use std::process::ExitCode;

use clap::Subcommand;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::{Connection, Output, Table, client, error_text, print};

#[derive(Subcommand, Debug)]
pub enum PartitionsCommand {
    /// Moves partitions of TOPIC to other replicas.
    Move {
        topic: String,
        /// PARTITION:BROKER,BROKER,... (the first broker is the preferred leader).
        #[arg(short, long = "partition", value_parser = partition_move, required = true)]
        partitions: Vec<(i32, Vec<i32>)>,
    },
    /// The moves under way (of TOPIC only, if named).
    MoveStatus { topic: Option<String> },
    /// Cancels moves under way: the partitions named with -p, else every one of TOPIC.
    MoveCancel {
        topic: String,
        /// A partition whose move to cancel.
        #[arg(short, long = "partition")]
        partitions: Vec<i32>,
    },
}

/// `PARTITION:BROKER,BROKER,...`.
fn partition_move(text: &str) -> Result<(i32, Vec<i32>), String> {
    let bad = || format!("expected PARTITION:BROKER,BROKER,... (0:1000,2000), got '{text}'");
    let (partition, brokers) = text.split_once(':').ok_or_else(bad)?;
    let partition = partition.parse().map_err(|_| bad())?;
    let brokers = brokers
        .split(',')
        .map(|broker| broker.trim().parse::<i32>())
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| bad())?;
    Ok((partition, brokers))
}

pub fn partitions(command: &PartitionsCommand, connection: &Connection) -> ExitCode {
    print(
        &connection.format,
        partitions_output(command, &connection.brokers),
    )
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn partitions_output(command: &PartitionsCommand, brokers: &str) -> Result<Output, String> {
    let mut broker = client::Client::connect(brokers)?;
    match command {
        PartitionsCommand::Move { topic, partitions } => {
            let moves = partitions
                .iter()
                .map(|(partition, replicas)| (*partition, Some(replicas.clone())))
                .collect();
            alter(&mut broker, topic, moves)
        }
        PartitionsCommand::MoveCancel { topic, partitions } => {
            let partitions = if partitions.is_empty() {
                under_way(&mut broker, Some(topic))?
                    .into_iter()
                    .map(|(_, partition, _)| partition)
                    .collect()
            } else {
                partitions.clone()
            };
            if partitions.is_empty() {
                return Err(format!("no move of {topic} is under way"));
            }
            alter(
                &mut broker,
                topic,
                partitions.into_iter().map(|p| (p, None)).collect(),
            )
        }
        PartitionsCommand::MoveStatus { topic } => {
            let moves = under_way(&mut broker, topic.as_deref())?;
            let mut table = Table::new(
                None,
                vec!["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
            );
            let list = |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
            let mut rows = Vec::new();
            for (topic, partition, (replicas, adding, removing)) in &moves {
                table.rows.push(vec![
                    topic.clone(),
                    partition.to_string(),
                    list(replicas),
                    list(adding),
                    list(removing),
                ]);
                rows.push(json!({"topic": topic, "partition": partition,
                    "replicas": replicas, "adding": adding, "removing": removing}));
            }
            Ok(Output {
                json: json!(rows),
                sections: vec![table],
                failed: false,
            })
        }
    }
}

/// One move under way: `(topic, partition, (replicas, adding, removing))`.
type UnderWay = (String, i32, (Vec<i32>, Vec<i32>, Vec<i32>));

fn under_way(broker: &mut client::Client, topic: Option<&str>) -> Result<Vec<UnderWay>, String> {
    // Every move under way (naming a topic needs its partitions), then TOPIC's.
    let response: ListPartitionReassignmentsResponse = broker.call(
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(None),
    )?;
    if response.error_code != 0 {
        return Err(error_text(response.error_code));
    }
    let ids = |brokers: &[BrokerId]| brokers.iter().map(|b| b.0).collect::<Vec<i32>>();
    Ok(response
        .topics
        .iter()
        .filter(|t| topic.is_none_or(|topic| t.name.as_str() == topic))
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    (
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ),
                )
            })
        })
        .collect())
}

fn alter(
    broker: &mut client::Client,
    topic: &str,
    moves: Vec<(i32, Option<Vec<i32>>)>,
) -> Result<Output, String> {
    let partitions = moves
        .into_iter()
        .map(|(partition, replicas)| {
            ReassignablePartition::default()
                .with_partition_index(partition)
                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
        })
        .collect();
    let response: AlterPartitionReassignmentsResponse = broker.call(
        ApiKey::AlterPartitionReassignments,
        0,
        &AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                ReassignableTopic::default()
                    .with_name(name(topic))
                    .with_partitions(partitions),
            ]),
    )?;
    if response.error_code != 0 {
        return Err(error_text(response.error_code));
    }
    let mut table = Table::new(None, vec!["TOPIC", "PARTITION", "RESULT"]);
    let mut rows = Vec::new();
    let mut failed = false;
    for answer in response.responses.iter().flat_map(|t| &t.partitions) {
        let message = answer.error_message.as_ref().map(|m| m.to_string());
        let mut text = error_text(answer.error_code);
        if let Some(message) = &message {
            text.push_str(&format!(": {message}"));
        }
        failed |= answer.error_code != 0;
        table.rows.push(vec![
            topic.to_string(),
            answer.partition_index.to_string(),
            text,
        ]);
        rows.push(json!({"topic": topic, "partition": answer.partition_index,
            "error": (answer.error_code != 0).then(|| error_text(answer.error_code)),
            "message": message}));
    }
    Ok(Output {
        json: json!(rows),
        sections: vec![table],
        failed,
    })
}
