//! `spindle group list|describe|delete`, through ListGroups (every broker: each core
//! coordinates its own groups), FindCoordinator, DescribeGroups, OffsetFetch, ListOffsets
//! and DeleteGroups. Main thread.

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use clap::Subcommand;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    GroupId, ListGroupsRequest, ListGroupsResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde_json::json;

use super::client::{Client, Cluster};
use super::topic::offsets;
use super::{Output, Table, error_text};

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Lists the consumer groups of every broker.
    List,
    /// A group's state, members, and committed offsets with their lag.
    Describe { name: String },
    /// Moves an (empty) group's committed offsets of a topic: --to start|end|N|@timestamp-ms.
    Seek {
        name: String,
        #[arg(long)]
        topic: String,
        #[arg(long, value_parser = super::records::StartAt::parse)]
        to: super::records::StartAt,
    },
    /// Deletes groups (empty ones: Kafka refuses a group with members).
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// A connection to `group`'s coordinator.
pub(super) fn coordinator<'a>(
    cluster: &'a mut Cluster,
    group: &str,
) -> Result<&'a mut Client, String> {
    let response: FindCoordinatorResponse = cluster.bootstrap.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0),
    )?;
    if response.error_code != 0 {
        return Err(format!(
            "the coordinator of group '{group}': {}",
            error_text(response.error_code)
        ));
    }
    let address = format!("{}:{}", response.host, response.port);
    cluster.at(response.node_id.0, address)
}

/// `(topic, partition)`s a consumer member's assignment names, if it decodes.
fn assigned(bytes: &Bytes) -> Vec<(String, i32)> {
    let mut bytes = bytes.clone();
    if bytes.remaining() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut bytes, version) else {
        return Vec::new();
    };
    assignment
        .assigned_partitions
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(move |&partition| (topic.topic.to_string(), partition))
        })
        .collect()
}

pub fn run(command: &GroupCommand, brokers: &str) -> Result<Output, String> {
    let mut cluster = Cluster::connect(brokers)?;
    match command {
        GroupCommand::List => {
            let mut groups = BTreeMap::new();
            for id in cluster.broker_ids() {
                let response: ListGroupsResponse = cluster.broker(id)?.call(
                    ApiKey::ListGroups,
                    4,
                    &ListGroupsRequest::default(),
                )?;
                for group in response.groups {
                    groups.insert(
                        group.group_id.to_string(),
                        (
                            group.group_state.to_string(),
                            group.protocol_type.to_string(),
                            id,
                        ),
                    );
                }
            }
            let mut table =
                Table::new(None, vec!["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"]);
            let mut json = Vec::new();
            for (group, (state, protocol_type, coordinator)) in groups {
                table.rows.push(vec![
                    group.clone(),
                    state.clone(),
                    protocol_type.clone(),
                    coordinator.to_string(),
                ]);
                json.push(json!({"group": group, "state": state, "protocol_type": protocol_type, "coordinator": coordinator}));
            }
            Ok(Output {
                json: json.into(),
                sections: vec![table],
                failed: false,
            })
        }
        GroupCommand::Describe { name } => describe(&mut cluster, name),
        GroupCommand::Seek { name, topic, to } => seek(&mut cluster, name, topic, to),
        GroupCommand::Delete { names } => {
            let mut table = Table::new(None, vec!["GROUP", "RESULT"]);
            let mut json = Vec::new();
            let mut failed = false;
            for group in names {
                let response: DeleteGroupsResponse = coordinator(&mut cluster, group)?.call(
                    ApiKey::DeleteGroups,
                    2,
                    &DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
                )?;
                let code = response.results.first().map_or(0, |r| r.error_code);
                failed |= code != 0;
                table.rows.push(vec![group.clone(), error_text(code)]);
                json.push(json!({"group": group, "error": (code != 0).then(|| error_text(code))}));
            }
            Ok(Output {
                json: json.into(),
                sections: vec![table],
                failed,
            })
        }
    }
}

fn describe(cluster: &mut Cluster, group: &str) -> Result<Output, String> {
    let coordinator_client = coordinator(cluster, group)?;
    let described: DescribeGroupsResponse = coordinator_client.call(
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
    )?;
    let fetched: OffsetFetchResponse = coordinator_client.call(
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(group_id(group))
            .with_topics(None),
    )?;
    let described = described
        .groups
        .into_iter()
        .next()
        .ok_or("DescribeGroups answered no group")?;
    if described.error_code != 0 {
        return Err(format!(
            "group '{group}': {}",
            error_text(described.error_code)
        ));
    }
    if fetched.error_code != 0 {
        return Err(format!(
            "offsets of group '{group}': {}",
            error_text(fetched.error_code)
        ));
    }
    let mut summary = Table::new(Some("GROUP"), vec!["NAME", "STATE", "PROTOCOL", "MEMBERS"]);
    summary.rows.push(vec![
        group.to_string(),
        described.group_state.to_string(),
        described.protocol_data.to_string(),
        described.members.len().to_string(),
    ]);
    // Which member holds each partition.
    let mut holder: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for member in &described.members {
        for key in assigned(&member.member_assignment) {
            holder.insert(
                key,
                (
                    member.member_id.to_string(),
                    member.client_id.to_string(),
                    member.client_host.to_string(),
                ),
            );
        }
    }
    let metadata = cluster.metadata(Some(
        fetched.topics.iter().map(|t| t.name.to_string()).collect(),
    ))?;
    let leaders: BTreeMap<(String, i32), i32> = metadata
        .topics
        .iter()
        .flat_map(|topic| {
            let name = topic
                .name
                .as_ref()
                .map(|n| n.to_string())
                .unwrap_or_default();
            topic
                .partitions
                .iter()
                .map(move |p| ((name.clone(), p.partition_index), p.leader_id.0))
        })
        .collect();
    let mut table = Table::new(
        Some("OFFSETS"),
        vec![
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER-ID",
            "CLIENT-ID",
            "HOST",
        ],
    );
    let mut json_offsets = Vec::new();
    for topic in &fetched.topics {
        for partition in &topic.partitions {
            let key = (topic.name.to_string(), partition.partition_index);
            let end = match leaders.get(&key) {
                Some(&leader) if leader >= 0 => Some(offsets(cluster, &key.0, key.1, leader)?.1),
                _ => None,
            };
            let committed = partition.committed_offset;
            let lag = end
                .filter(|_| committed >= 0)
                .map(|end| (end - committed).max(0));
            let (member, client, host) = holder.get(&key).cloned().unwrap_or_default();
            let shown = |value: Option<i64>| value.map_or("-".to_string(), |v| v.to_string());
            table.rows.push(vec![
                key.0.clone(),
                key.1.to_string(),
                committed.to_string(),
                shown(end),
                shown(lag),
                member.clone(),
                client.clone(),
                host.clone(),
            ]);
            json_offsets.push(json!({
                "topic": key.0, "partition": key.1, "committed_offset": committed,
                "log_end_offset": end, "lag": lag, "member_id": member, "client_id": client, "host": host,
            }));
        }
    }
    let members: Vec<_> = described
        .members
        .iter()
        .map(|m| json!({"member_id": m.member_id.to_string(), "client_id": m.client_id.to_string(), "host": m.client_host.to_string()}))
        .collect();
    Ok(Output {
        json: json!({
            "group": group,
            "state": described.group_state.to_string(),
            "protocol": described.protocol_data.to_string(),
            "members": members,
            "offsets": json_offsets,
        }),
        sections: vec![summary, table],
        failed: false,
    })
}

/// Commits, for every partition of `topic`, the offset `to` names, as `group`'s.
fn seek(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    to: &super::records::StartAt,
) -> Result<Output, String> {
    use super::records::StartAt;
    let metadata = cluster.metadata(Some(vec![topic.to_string()]))?;
    let found = metadata
        .topics
        .first()
        .filter(|t| t.error_code == 0)
        .ok_or_else(|| format!("no topic '{topic}'"))?;
    let mut targets = BTreeMap::new();
    let partitions: Vec<(i32, i32)> = found
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect();
    for (partition, leader) in partitions {
        let (start, end) = offsets(cluster, topic, partition, leader)?;
        let target = match to {
            StartAt::Start => start,
            StartAt::End => end,
            StartAt::Offset(offset) => (*offset).clamp(start, end),
            StartAt::Timestamp(ms) => {
                super::records::offset_for_timestamp(cluster, topic, partition, leader, *ms)?
                    .unwrap_or(end)
            }
        };
        targets.insert(partition, target);
    }
    let answers = super::records::commit(cluster, group, topic, &targets)?;
    let mut table = Table::new(None, vec!["TOPIC", "PARTITION", "OFFSET", "RESULT"]);
    let mut json = Vec::new();
    let mut failed = false;
    for (partition, code) in answers {
        failed |= code != 0;
        let offset = targets.get(&partition).copied().unwrap_or(-1);
        table.rows.push(vec![
            topic.to_string(),
            partition.to_string(),
            offset.to_string(),
            error_text(code),
        ]);
        json.push(json!({"topic": topic, "partition": partition, "offset": offset, "error": (code != 0).then(|| error_text(code))}));
    }
    Ok(Output {
        json: json.into(),
        sections: vec![table],
        failed,
    })
}
