//! The native engine: speaks the Kafka protocol itself so the generator is never the
//! bottleneck. `produce` builds its record batches (and whole Produce frames) once per
//! partition; a send only patches the correlation id. `e2e` builds each batch when it is
//! sent, stamping every message with the time it became due. Each producer opens one
//! connection per partition leader, with a sender and a receiver thread keeping up to
//! `--in-flight` requests outstanding; produce latency is per request, send to answer.
//! Consumers: one thread per (consumer, partition leader), one Fetch in flight each.

mod consume;
mod e2e;
mod produce;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use self::produce::Outgoing;
use crate::stats::{Run, Summary};
use crate::{ConsumeArgs, E2eArgs, LoadEngine, ProduceArgs};

pub use self::consume::run_consume;
pub use self::e2e::run_e2e;
pub use self::produce::run_produce;

const PRODUCE_VERSION: i16 = 9;
const METADATA_VERSION: i16 = 9;
const CREATE_TOPICS_VERSION: i16 = 5;
const CLIENT_ID: &str = "spindle-bench";

/// A blocking request/response connection for setup (metadata, topic creation).
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    pub(crate) fn connect(address: &str) -> Result<Connection, String> {
        let stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection {
            stream,
            correlation_id: 0,
        })
    }

    pub(crate) fn call<R: Encodable, T: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &R,
    ) -> Result<T, String> {
        self.correlation_id += 1;
        let frame = encode_request(api_key, version, self.correlation_id, body)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| format!("send: {e}"))?;
        let mut response = read_frame(&mut self.stream)?;
        let header =
            ResponseHeader::decode(&mut response, api_key.response_header_version(version))
                .map_err(|e| format!("response header: {e}"))?;
        if header.correlation_id != self.correlation_id {
            return Err("response out of order".into());
        }
        T::decode(&mut response, version).map_err(|e| format!("{api_key:?} response: {e}"))
    }
}

pub(crate) fn encode_request<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut, String> {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
        .encode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| e.to_string())?;
    body.encode(&mut frame, version)
        .map_err(|e| e.to_string())?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

pub(crate) fn read_frame(stream: &mut TcpStream) -> Result<Bytes, String> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("receive: {e}"))?;
    let size = i32::from_be_bytes(size);
    if !(0..=(256 << 20)).contains(&size) {
        return Err(format!("response frame of {size} bytes"));
    }
    // Read into spare capacity: no zeroing of buffers up to a Fetch's 16 MiB first.
    let mut body = Vec::with_capacity(size as usize);
    let read = Read::take(&mut *stream, size as u64)
        .read_to_end(&mut body)
        .map_err(|e| format!("receive: {e}"))?;
    if read != size as usize {
        return Err("receive: connection closed mid-frame".into());
    }
    Ok(Bytes::from(body))
}

/// The leader address of each partition of `topic`. A missing topic is created with
/// `create_partitions` partitions, or is an error when that is `None`.
pub(crate) fn leaders(
    brokers: &str,
    topic_name: &str,
    create_partitions: Option<i32>,
) -> Result<BTreeMap<i32, String>, String> {
    let mut connection = Connection::connect(brokers)?;
    let topic = TopicName(StrBytes::from_string(topic_name.to_string()));
    for attempt in 0..50 {
        let metadata: MetadataResponse = connection.call(
            ApiKey::Metadata,
            METADATA_VERSION,
            &MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic.clone())),
                ]))
                .with_allow_auto_topic_creation(false),
        )?;
        let found = &metadata.topics[0];
        if found.error_code == 0
            && !found.partitions.is_empty()
            && found.partitions.iter().all(|p| p.leader_id.0 >= 0)
        {
            let brokers: BTreeMap<i32, String> = metadata
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect();
            return found
                .partitions
                .iter()
                .map(|p| {
                    brokers
                        .get(&p.leader_id.0)
                        .map(|address| (p.partition_index, address.clone()))
                        .ok_or_else(|| {
                            format!(
                                "leader {} of partition {} is not listed",
                                p.leader_id.0, p.partition_index
                            )
                        })
                })
                .collect();
        }
        if attempt == 0 {
            let Some(partitions) = create_partitions else {
                return Err(format!("topic {topic_name} does not exist"));
            };
            let created: CreateTopicsResponse = connection.call(
                ApiKey::CreateTopics,
                CREATE_TOPICS_VERSION,
                &CreateTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![
                        CreatableTopic::default()
                            .with_name(topic.clone())
                            .with_num_partitions(partitions)
                            .with_replication_factor(1),
                    ]),
            )?;
            let code = created.topics.first().map_or(0, |t| t.error_code);
            if code != 0 && code != 36 {
                return Err(format!("creating topic {topic_name}: error code {code}"));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("topic {topic_name} has no leaders"))
}

/// The high watermark of every partition of `topic`: where a reader of "everything now"
/// stops, or where a reader of "what comes next" starts.
pub(crate) fn end_offsets(
    leaders: &BTreeMap<i32, String>,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, String> {
    Ok(high_watermarks(leaders, topic)?
        .into_iter()
        .map(|(partition, _, end)| (partition, end))
        .collect())
}

/// The high watermark of every partition of `topic`, with its leader's address.
pub(crate) fn high_watermarks(
    leaders: &BTreeMap<i32, String>,
    topic: &str,
) -> Result<Vec<(i32, String, i64)>, String> {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};
    let mut out = Vec::new();
    for (&partition, address) in leaders {
        let mut connection = Connection::connect(address)?;
        let response: ListOffsetsResponse = connection.call(
            ApiKey::ListOffsets,
            5,
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(partition)
                                .with_timestamp(-1),
                        ]),
                ]),
        )?;
        let answer = &response.topics[0].partitions[0];
        if answer.error_code != 0 {
            return Err(format!(
                "ListOffsets {topic}-{partition}: error {}",
                answer.error_code
            ));
        }
        out.push((partition, address.clone(), answer.offset));
    }
    Ok(out)
}

/// The native engine.
pub struct Native;

impl LoadEngine for Native {
    fn produce(&self, args: &ProduceArgs) -> Result<Summary, String> {
        run_produce(args)
    }

    fn consume(&self, args: &ConsumeArgs) -> Result<Summary, String> {
        run_consume(args)
    }

    fn e2e(&self, args: &E2eArgs) -> Result<crate::e2e::E2eOutcome, String> {
        run_e2e(args)
    }
}

/// Where a sender's requests come from.
trait FrameSource: Send {
    /// The next request, after any pacing; `None` when the run is over.
    fn next(&mut self, run: &Run) -> Option<Outgoing<'_>>;
}

/// A pre-built Produce frame and the messages and record bytes it carries.
type PrebuiltFrame = (BytesMut, u64, u64);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Partitions grouped by leader address.
fn by_leader(leaders: &BTreeMap<i32, String>) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (partition, address) in leaders {
        out.entry(address.clone()).or_default().push(*partition);
    }
    out
}
