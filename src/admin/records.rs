//! `spindle topic produce` (lines from stdin, one record each) and `spindle topic consume`
//! (records to stdout through a template or as JSON lines). Plain Produce and Fetch
//! requests to each partition's leader. `--group` joins the group (`member`) and reads the
//! partitions it is assigned from their committed offsets; with `--partition` it reads
//! those and commits from outside the group, as admin tools do. Main thread.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, GroupId, ListOffsetsRequest,
    ListOffsetsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use spindle_protocol::compaction::for_each_keyed_record;
use spindle_protocol::compression::decompress_batch;
use spindle_protocol::partitioner::partition_for_key;
use spindle_protocol::record_batch::{
    RecordBatchHeader, build_batch_of, for_each_record, split_batches,
};

use super::client::{Client, Cluster};
use super::member::Member;
use super::{Format, Output, Table, error_text};

/// A record to send: its key (if any) and value.
type Line = (Option<Vec<u8>>, Vec<u8>);

/// Records a produced batch holds at most.
const BATCH_RECORDS_MAX: usize = 500;
/// Bytes a consumer asks one partition for per fetch.
const FETCH_BYTES: i32 = 1 << 20;

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The partitions of `topic` and their leaders.
fn leaders(cluster: &mut Cluster, topic: &str) -> Result<BTreeMap<i32, i32>, String> {
    let metadata = cluster.metadata(Some(vec![topic.to_string()]))?;
    let found = metadata
        .topics
        .first()
        .ok_or_else(|| format!("no topic '{topic}'"))?;
    if found.error_code != 0 {
        return Err(format!("topic '{topic}': {}", error_text(found.error_code)));
    }
    Ok(found
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect())
}

/// What `topic produce` takes.
pub struct ProduceOptions<'a> {
    pub key: Option<&'a str>,
    pub separator: Option<&'a str>,
    pub partition: Option<i32>,
    pub acks: i16,
}

/// Sends every line of `input` as a record of `topic`; a table of what each partition took.
pub fn produce(
    cluster: &mut Cluster,
    topic: &str,
    options: &ProduceOptions<'_>,
    input: &mut dyn BufRead,
) -> Result<Output, String> {
    let leaders = leaders(cluster, topic)?;
    let partitions = leaders.len() as i32;
    if let Some(partition) = options.partition
        && !leaders.contains_key(&partition)
    {
        return Err(format!("topic '{topic}' has no partition {partition}"));
    }
    let mut pending: BTreeMap<i32, Vec<Line>> = BTreeMap::new();
    // Per partition: records, first offset, error.
    let mut produced: BTreeMap<i32, (u64, i64, i16)> = BTreeMap::new();
    let mut round_robin = 0;
    let mut send =
        |cluster: &mut Cluster, partition: i32, records: Vec<Line>| -> Result<(), String> {
            let timestamp = now_ms();
            let refs: Vec<_> = records
                .iter()
                .map(|(key, value)| (timestamp, key.as_deref(), Some(value.as_slice())))
                .collect();
            let batch = Bytes::from(build_batch_of(&refs));
            let client = cluster.broker(leaders[&partition])?;
            let response: ProduceResponse = client.call(
                ApiKey::Produce,
                9,
                &ProduceRequest::default()
                    .with_acks(options.acks)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![
                        TopicProduceData::default()
                            .with_name(name(topic))
                            .with_partition_data(vec![
                                PartitionProduceData::default()
                                    .with_index(partition)
                                    .with_records(Some(batch)),
                            ]),
                    ]),
            )?;
            let entry = produced.entry(partition).or_insert((0, -1, 0));
            if options.acks == 0 {
                entry.0 += records.len() as u64;
                return Ok(());
            }
            let answer = &response.responses[0].partition_responses[0];
            if answer.error_code != 0 {
                entry.2 = answer.error_code;
            } else {
                entry.0 += records.len() as u64;
                if entry.1 < 0 {
                    entry.1 = answer.base_offset;
                }
            }
            Ok(())
        };
    let mut line = String::new();
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|e| format!("reading stdin: {e}"))?;
        if read == 0 {
            break;
        }
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let (key, value) = match options.separator {
            Some(separator) => match text.split_once(separator) {
                Some((key, value)) => (Some(key.as_bytes().to_vec()), value.as_bytes().to_vec()),
                None => (None, text.as_bytes().to_vec()),
            },
            None => (
                options.key.map(|k| k.as_bytes().to_vec()),
                text.as_bytes().to_vec(),
            ),
        };
        let partition = match (options.partition, &key) {
            (Some(partition), _) => partition,
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        let queue = pending.entry(partition).or_default();
        queue.push((key, value));
        if queue.len() >= BATCH_RECORDS_MAX {
            let records = std::mem::take(queue);
            send(cluster, partition, records)?;
        }
    }
    for (partition, records) in std::mem::take(&mut pending) {
        if !records.is_empty() {
            send(cluster, partition, records)?;
        }
    }
    let mut table = Table::new(None, vec!["PARTITION", "RECORDS", "FIRST-OFFSET", "RESULT"]);
    let mut json_rows = Vec::new();
    let mut failed = false;
    for (partition, (records, first, code)) in produced {
        failed |= code != 0;
        table.rows.push(vec![
            partition.to_string(),
            records.to_string(),
            first.to_string(),
            error_text(code),
        ]);
        json_rows.push(json!({"partition": partition, "records": records, "first_offset": first, "error": (code != 0).then(|| error_text(code))}));
    }
    Ok(Output {
        json: json_rows.into(),
        sections: vec![table],
        failed,
    })
}

/// Where `topic consume` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    Start,
    End,
    Offset(i64),
    Timestamp(i64),
}

impl StartAt {
    pub fn parse(text: &str) -> Result<StartAt, String> {
        match text {
            "start" => Ok(StartAt::Start),
            "end" => Ok(StartAt::End),
            _ => {
                if let Some(ms) = text.strip_prefix('@') {
                    return ms
                        .parse()
                        .map(StartAt::Timestamp)
                        .map_err(|_| format!("'@{ms}' is not a timestamp in ms"));
                }
                text.parse()
                    .ok()
                    .filter(|&offset: &i64| offset >= 0)
                    .map(StartAt::Offset)
                    .ok_or_else(|| format!("'{text}' is not start, end, an offset or @timestamp"))
            }
        }
    }
}

/// ListOffsets of `partition` at `timestamp` on its leader.
pub(super) fn offset_at(
    client: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<i64, String> {
    let response: ListOffsetsResponse = client.call(
        ApiKey::ListOffsets,
        7,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ]),
    )?;
    let answer = &response.topics[0].partitions[0];
    if answer.error_code != 0 {
        return Err(format!(
            "{topic}-{partition}: {}",
            error_text(answer.error_code)
        ));
    }
    Ok(answer.offset)
}

/// The first offset of `partition` whose record timestamp reaches `ms`, if any.
pub(super) fn offset_for_timestamp(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    leader: i32,
    ms: i64,
) -> Result<Option<i64>, String> {
    let found = offset_at(cluster.broker(leader)?, topic, partition, ms)?;
    Ok((found >= 0).then_some(found))
}

/// What `topic consume` takes.
pub struct ConsumeOptions<'a> {
    pub start: StartAt,
    pub partitions: &'a [i32],
    pub num: Option<u64>,
    pub group: Option<&'a str>,
    /// Keep waiting for records past the end there was at start.
    pub follow: bool,
}

/// One record as `consume` prints it.
struct Printed<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn render(format: &Format, record: &Printed<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    fn text(bytes: Option<&[u8]>) -> String {
        bytes.map_or_else(String::new, |b| String::from_utf8_lossy(b).into_owned())
    }
    match format {
        Format::Json => {
            let line = json!({
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "timestamp": record.timestamp,
                "key": record.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                "value": record.value.map(|v| String::from_utf8_lossy(v).into_owned()),
            });
            writeln!(out, "{line}")
        }
        Format::Text => writeln!(out, "{}", text(record.value)),
        Format::Template(template) => {
            let mut rendered = String::new();
            let mut chars = template.chars();
            while let Some(c) = chars.next() {
                match (c, c.eq(&'%').then(|| chars.clone().next()).flatten()) {
                    ('%', Some(field)) => {
                        chars.next();
                        match field {
                            'v' => rendered.push_str(&text(record.value)),
                            'k' => rendered.push_str(&text(record.key)),
                            'p' => rendered.push_str(&record.partition.to_string()),
                            'o' => rendered.push_str(&record.offset.to_string()),
                            'd' => rendered.push_str(&record.timestamp.to_string()),
                            't' => rendered.push_str(record.topic),
                            '%' => rendered.push('%'),
                            other => {
                                rendered.push('%');
                                rendered.push(other);
                            }
                        }
                    }
                    ('\\', _) => match chars.clone().next() {
                        Some('n') => {
                            chars.next();
                            rendered.push('\n');
                        }
                        Some('t') => {
                            chars.next();
                            rendered.push('\t');
                        }
                        _ => rendered.push('\\'),
                    },
                    (c, _) => rendered.push(c),
                }
            }
            out.write_all(rendered.as_bytes())
        }
    }
}

/// The committed offsets of `group` for `topic`'s `partitions` (absent: none committed).
fn committed(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, String> {
    let client = super::group::coordinator(cluster, group)?;
    let response: OffsetFetchResponse = client.call(
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(name(topic))
                    .with_partition_indexes(partitions.to_vec()),
            ])),
    )?;
    if response.error_code != 0 {
        return Err(format!(
            "offsets of group '{group}': {}",
            error_text(response.error_code)
        ));
    }
    Ok(response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
        .map(|p| (p.partition_index, p.committed_offset))
        .collect())
}

/// Commits `positions` for `group` (outside any generation, as admin tools do).
pub(super) fn commit(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> Result<Vec<(i32, i16)>, String> {
    commit_as(cluster, group, topic, positions, -1, "")
}

/// Commits `positions` for `group` as `member_id` of `generation` (-1 and "": from
/// outside the group). Per partition, its error code.
pub(super) fn commit_as(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
    generation: i32,
    member_id: &str,
) -> Result<Vec<(i32, i16)>, String> {
    let client = super::group::coordinator(cluster, group)?;
    let response: OffsetCommitResponse = client.call(
        ApiKey::OffsetCommit,
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member_id.to_string()))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(
                        positions
                            .iter()
                            .map(|(&partition, &offset)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(partition)
                                    .with_committed_offset(offset)
                            })
                            .collect(),
                    ),
            ]),
    )?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, p.error_code))
        .collect())
}

/// Per partition: the next offset to print (the group's committed offset, else where
/// `options` start), and the end there is now.
fn start_positions(
    cluster: &mut Cluster,
    topic: &str,
    leaders: &BTreeMap<i32, i32>,
    partitions: &[i32],
    options: &ConsumeOptions<'_>,
) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let from_group = match options.group {
        Some(group) if !partitions.is_empty() => committed(cluster, group, topic, partitions)?,
        _ => BTreeMap::new(),
    };
    let mut positions = BTreeMap::new();
    for &partition in partitions {
        let leader = *leaders
            .get(&partition)
            .ok_or_else(|| format!("topic '{topic}' has no partition {partition}"))?;
        let client = cluster.broker(leader)?;
        let end = offset_at(client, topic, partition, -1)?;
        let start = match (from_group.get(&partition), &options.start) {
            (Some(&committed), _) => committed,
            (None, StartAt::Start) => offset_at(client, topic, partition, -2)?,
            (None, StartAt::End) => end,
            (None, StartAt::Offset(offset)) => *offset,
            (None, StartAt::Timestamp(ms)) => match offset_at(client, topic, partition, *ms)? {
                -1 => end,
                found => found,
            },
        };
        positions.insert(partition, (start, end));
    }
    Ok(positions)
}

/// Commits where this member stopped in each of its partitions.
fn commit_as_member(
    member: &mut Member,
    cluster: &mut Cluster,
    topic: &str,
    positions: &BTreeMap<i32, (i64, i64)>,
) -> Result<(), String> {
    if positions.is_empty() {
        return Ok(());
    }
    let stopped: BTreeMap<i32, i64> = positions.iter().map(|(&p, &(next, _))| (p, next)).collect();
    for (partition, code) in member.commit(cluster, &stopped)? {
        if code != 0 {
            return Err(format!(
                "committing {topic}-{partition}: {}",
                error_text(code)
            ));
        }
    }
    Ok(())
}

/// Prints `topic`'s records from where `options` say; returns how many it printed.
pub fn consume(
    cluster: &mut Cluster,
    topic: &str,
    options: &ConsumeOptions<'_>,
    format: &Format,
    out: &mut dyn Write,
) -> Result<u64, String> {
    let leaders = leaders(cluster, topic)?;
    let partitions: Vec<i32> = if options.partitions.is_empty() {
        leaders.keys().copied().collect()
    } else {
        for partition in options.partitions {
            if !leaders.contains_key(partition) {
                return Err(format!("topic '{topic}' has no partition {partition}"));
            }
        }
        options.partitions.to_vec()
    };
    // --group without --partition: a member of the group, reading what it is assigned.
    // With --partition, those partitions, committing for the group from outside it.
    let (mut member, partitions) = match options.group {
        Some(group) if options.partitions.is_empty() => {
            let (member, assigned) = Member::join(cluster, group, topic)?;
            (Some(member), assigned)
        }
        _ => (None, partitions),
    };
    let mut positions = start_positions(cluster, topic, &leaders, &partitions, options)?;
    let mut printed = 0u64;
    let done = |printed: u64| options.num.is_some_and(|num| printed >= num);
    loop {
        if let Some(member) = member.as_mut()
            && member.heartbeat(cluster)?
        {
            // The group is rebalancing: hand back what was read, take the new share.
            commit_as_member(member, cluster, topic, &positions)?;
            let assigned = member.rejoin(cluster)?;
            positions = start_positions(cluster, topic, &leaders, &assigned, options)?;
        }
        let waiting: Vec<i32> = positions
            .iter()
            .filter(|(_, (next, end))| options.follow || next < end)
            .map(|(&p, _)| p)
            .collect();
        if waiting.is_empty() || done(printed) {
            break;
        }
        let started = Instant::now();
        for partition in waiting {
            let (next, _) = positions[&partition];
            let client = cluster.broker(leaders[&partition])?;
            let response: FetchResponse = client.call(
                ApiKey::Fetch,
                12,
                &FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(if options.follow { 500 } else { 0 })
                    .with_min_bytes(1)
                    .with_max_bytes(FETCH_BYTES)
                    .with_session_epoch(-1)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(name(topic))
                            .with_partitions(vec![
                                FetchPartition::default()
                                    .with_partition(partition)
                                    .with_fetch_offset(next)
                                    .with_partition_max_bytes(FETCH_BYTES),
                            ]),
                    ]),
            )?;
            let data = &response.responses[0].partitions[0];
            if data.error_code != 0 {
                return Err(format!(
                    "fetching {topic}-{partition} at {next}: {}",
                    error_text(data.error_code)
                ));
            }
            let records = data.records.clone().unwrap_or_default();
            let mut position = next;
            for range in split_batches(&records) {
                let Ok(range) = range else { break };
                let batch = &records[range];
                let Ok(header) = RecordBatchHeader::decode(batch) else {
                    break;
                };
                if header.is_control() {
                    position = position.max(header.next_offset());
                    continue;
                }
                let plain = decompress_batch(batch).map_err(|e| {
                    format!("{topic}-{partition}: a batch does not decompress: {e}")
                })?;
                let mut meta = Vec::new();
                for_each_keyed_record(&plain, |r| meta.push((r.offset, r.timestamp)))
                    .map_err(|e| format!("{topic}-{partition}: {e}"))?;
                let mut failure = None;
                for_each_record(&plain, |index, key, value| {
                    let (offset, timestamp) = meta[index];
                    if offset < position || failure.is_some() || done(printed) {
                        return;
                    }
                    let record = Printed {
                        topic,
                        partition,
                        offset,
                        timestamp,
                        key,
                        value,
                    };
                    if let Err(e) = render(format, &record, out) {
                        failure = Some(e);
                    }
                    printed += 1;
                    position = offset + 1;
                })
                .ok_or_else(|| format!("{topic}-{partition}: records do not parse"))?;
                if let Some(e) = failure {
                    return Err(format!("writing stdout: {e}"));
                }
                if !done(printed) {
                    position = position.max(header.next_offset());
                }
            }
            positions.get_mut(&partition).expect("known").0 = position;
        }
        if options.follow && started.elapsed() < Duration::from_millis(50) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = out.flush();
    if let Some(mut member) = member {
        commit_as_member(&mut member, cluster, topic, &positions)?;
        member.leave(cluster)?;
    } else if let Some(group) = options.group {
        let stopped: BTreeMap<i32, i64> =
            positions.iter().map(|(&p, &(next, _))| (p, next)).collect();
        for (partition, code) in commit(cluster, group, topic, &stopped)? {
            if code != 0 {
                return Err(format!(
                    "committing {topic}-{partition} for '{group}': {}",
                    error_text(code)
                ));
            }
        }
    }
    Ok(printed)
}
