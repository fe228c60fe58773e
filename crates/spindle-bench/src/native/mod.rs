//! The native engine: speaks the Kafka protocol itself so the generator is never the
//! bottleneck. `produce` builds its record batches (and whole Produce frames) once per
//! partition; a send only patches the correlation id. `e2e` builds each batch when it is
//! sent, stamping every message with the time it became due. Each producer opens one
//! connection per partition leader, with a sender and a receiver thread keeping up to
//! `--in-flight` requests outstanding; produce latency is per request, send to answer.
//! Consumers: one thread per (consumer, partition leader), one Fetch in flight each.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::e2e::{Clock, SEND_TIME_BYTES, send_time};
use super::keys::{keys_for_partition, payload};
use super::rate::{Pacer, RateLimiter};
use super::stats::{Budget, Run, Summary, join_all, latency_histogram, record, record_n};
use super::{ConsumeArgs, E2eArgs, LoadEngine, ProduceArgs};
use spindle_protocol::compression::{Codec, decompress_batch};
use spindle_protocol::record_batch::{
    RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, TimedRecord, build_batch_with_timestamps,
    for_each_record,
};

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

    fn e2e(&self, args: &E2eArgs) -> Result<super::e2e::E2eOutcome, String> {
        run_e2e(args)
    }
}

/// Keys per partition in a keyed run's pool (cycled).
const KEY_POOL: usize = 4096;

/// One request to send: its encoded frame (the correlation id is patched by the sender),
/// and the messages and record bytes it carries.
struct Outgoing<'a> {
    frame: &'a mut [u8],
    messages: u64,
    bytes: u64,
}

/// Where a sender's requests come from.
trait FrameSource: Send {
    /// The next request, after any pacing; `None` when the run is over.
    fn next(&mut self, run: &Run) -> Option<Outgoing<'_>>;
}

/// A pre-built Produce frame and the messages and record bytes it carries.
type PrebuiltFrame = (BytesMut, u64, u64);

/// `produce`: the same pre-built frames, one per partition of this leader, in turn; whole
/// batches taken from the budget, paced by `--throughput` if given.
struct PrebuiltFrames {
    frames: Vec<PrebuiltFrame>,
    next: usize,
    budget: Arc<Budget>,
    limiter: Option<RateLimiter>,
}

impl FrameSource for PrebuiltFrames {
    fn next(&mut self, run: &Run) -> Option<Outgoing<'_>> {
        let index = self.next;
        self.next = (self.next + 1) % self.frames.len();
        let (frame, messages, bytes) = &mut self.frames[index];
        if self.budget.take(*messages, run) < *messages {
            return None;
        }
        if let Some(limiter) = &mut self.limiter {
            limiter.wait(*messages);
        }
        Some(Outgoing {
            frame,
            messages: *messages,
            bytes: *bytes,
        })
    }
}

/// How a batch's records are made: sizes, keys, compression.
#[derive(Clone)]
struct BatchShape {
    topic: String,
    acks: i16,
    message_bytes: usize,
    codec: Codec,
    /// Per partition, the keys that belong to it (empty when unkeyed).
    keys: BTreeMap<i32, Vec<[u8; 8]>>,
    padding: Arc<Vec<u8>>,
}

impl BatchShape {
    fn new(args: &ProduceArgs, partitions: &[i32], all_partitions: i32) -> BatchShape {
        let keys = if args.keys {
            partitions
                .iter()
                .map(|&p| (p, keys_for_partition(p, all_partitions, KEY_POOL)))
                .collect()
        } else {
            BTreeMap::new()
        };
        BatchShape {
            topic: args.common.topic.clone(),
            acks: args.acks.code(),
            message_bytes: args.message_bytes,
            codec: args.compression.codec(),
            keys,
            padding: Arc::new(payload(args.message_bytes, 0x2545_f491_4f6c_dd1d)),
        }
    }

    /// A Produce frame for `partition` with one batch of `count` messages; message `i`'s
    /// value starts with `stamp(i)` (8 bytes) when given, and `key_at` picks keys from the
    /// partition's pool.
    fn frame(
        &self,
        partition: i32,
        count: u64,
        timestamp_ms: i64,
        key_at: &mut usize,
        stamp: Option<&dyn Fn(u64) -> u64>,
    ) -> Result<BytesMut, String> {
        let mut values = Vec::with_capacity(count as usize * self.message_bytes);
        for index in 0..count {
            match stamp {
                Some(stamp) => {
                    values.extend_from_slice(&stamp(index).to_be_bytes());
                    values.extend_from_slice(&self.padding[SEND_TIME_BYTES..]);
                }
                None => values.extend_from_slice(&self.padding),
            }
        }
        let pool = self.keys.get(&partition);
        let records: Vec<TimedRecord<'_>> = values
            .chunks(self.message_bytes)
            .map(|value| {
                let key = pool.map(|pool| {
                    *key_at = (*key_at + 1) % pool.len();
                    pool[*key_at].as_slice()
                });
                (timestamp_ms, key, value)
            })
            .collect();
        let mut batch = build_batch_with_timestamps(&records);
        if self.codec != Codec::None {
            batch = spindle_protocol::compression::compress_batch(&batch, self.codec)?;
        }
        let request = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(self.topic.clone())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(batch))),
                    ]),
            ]);
        encode_request(ApiKey::Produce, PRODUCE_VERSION, 0, &request)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `e2e`: a fresh batch per request, each message stamped with the time it became due
/// (pacing and linger included), partitions of this leader in turn.
struct FreshBatches {
    shape: BatchShape,
    partitions: Vec<i32>,
    next: usize,
    key_at: usize,
    per_batch: u64,
    linger: Duration,
    pacer: Option<Pacer>,
    budget: Arc<Budget>,
    clock: Clock,
    frame: BytesMut,
}

impl FrameSource for FreshBatches {
    fn next(&mut self, run: &Run) -> Option<Outgoing<'_>> {
        let (count, first_due, interval) = match &mut self.pacer {
            Some(pacer) => {
                let (send_at, count) = pacer.plan(Instant::now(), self.per_batch, self.linger);
                let now = Instant::now();
                if send_at > now {
                    std::thread::sleep(send_at - now);
                }
                let first_due = pacer.due(0);
                pacer.commit(count);
                (count, first_due, pacer.interval())
            }
            None => (self.per_batch, Instant::now(), Duration::ZERO),
        };
        let count = self.budget.take(count, run);
        if count == 0 {
            return None;
        }
        let partition = self.partitions[self.next];
        self.next = (self.next + 1) % self.partitions.len();
        // Integer arithmetic per message: the clock is read once per batch.
        let (first_us, interval_ns) = (self.clock.micros_at(first_due), interval.as_nanos() as u64);
        let stamp = |index: u64| first_us + index * interval_ns / 1000;
        match self
            .shape
            .frame(partition, count, now_ms(), &mut self.key_at, Some(&stamp))
        {
            Ok(frame) => self.frame = frame,
            Err(reason) => {
                eprintln!("spindle bench: building a batch: {reason}");
                run.stop.store(true, Ordering::Relaxed);
                return None;
            }
        }
        Some(Outgoing {
            frame: &mut self.frame,
            messages: count,
            bytes: count * self.shape.message_bytes as u64,
        })
    }
}

/// A request sent and not yet answered.
struct Pending {
    sent: Instant,
    messages: u64,
    bytes: u64,
}

/// The queue a connection's sender and receiver share, bounded by `--in-flight`.
struct InFlight {
    queue: Mutex<(VecDeque<Pending>, bool)>, // (pending, sender done)
    changed: Condvar,
    limit: usize,
}

/// Runs one pipelined producer connection: this thread sends, a second one reads the
/// answers in order. Acknowledged messages count in `run` (with their request latency).
fn pipeline(
    address: &str,
    mut source: impl FrameSource + 'static,
    acks: i16,
    in_flight: usize,
    run: Arc<Run>,
) -> Result<Vec<std::thread::JoinHandle<Result<(), String>>>, String> {
    let stream = Connection::connect(address)?.stream;
    let receiver_stream = stream.try_clone().map_err(|e| e.to_string())?;
    let shared = Arc::new(InFlight {
        queue: Mutex::new((VecDeque::new(), false)),
        changed: Condvar::new(),
        limit: in_flight,
    });
    let mut threads = Vec::new();
    if acks != 0 {
        let (shared, run) = (shared.clone(), run.clone());
        threads.push(std::thread::spawn(move || {
            receive(receiver_stream, &shared, &run)
        }));
    }
    threads.push(std::thread::spawn(move || {
        let result = send(stream, &mut source, acks, &shared, &run);
        shared.queue.lock().expect("in flight").1 = true;
        shared.changed.notify_all();
        if result.is_err() {
            run.stop.store(true, Ordering::Relaxed);
        }
        result
    }));
    Ok(threads)
}

fn send(
    mut stream: TcpStream,
    source: &mut dyn FrameSource,
    acks: i16,
    shared: &InFlight,
    run: &Run,
) -> Result<(), String> {
    let mut correlation_id = 0i32;
    loop {
        if acks != 0 {
            let mut queue = shared.queue.lock().expect("in flight");
            while queue.0.len() >= shared.limit && !run.stopped() {
                queue = shared.changed.wait(queue).expect("in flight");
            }
        }
        let Some(outgoing) = source.next(run) else {
            return Ok(());
        };
        correlation_id = correlation_id.wrapping_add(1);
        outgoing.frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());
        if acks != 0 {
            shared
                .queue
                .lock()
                .expect("in flight")
                .0
                .push_back(Pending {
                    sent: Instant::now(),
                    messages: outgoing.messages,
                    bytes: outgoing.bytes,
                });
            shared.changed.notify_all();
        }
        stream
            .write_all(outgoing.frame)
            .map_err(|e| format!("send: {e}"))?;
        if acks == 0 {
            run.count(outgoing.messages, outgoing.bytes);
        }
    }
}

/// Answers between merges of a receiver's latencies into the run's histogram (what the
/// progress line reads).
const LATENCY_MERGE_EVERY: u64 = 256;

fn receive(mut stream: TcpStream, shared: &InFlight, run: &Run) -> Result<(), String> {
    let mut local = latency_histogram();
    let mut answers = 0u64;
    let result = loop {
        let request = {
            let mut queue = shared.queue.lock().expect("in flight");
            loop {
                if let Some(request) = queue.0.pop_front() {
                    break Some(request);
                }
                if queue.1 || run.stopped() {
                    break None;
                }
                queue = shared.changed.wait(queue).expect("in flight");
            }
        };
        shared.changed.notify_all();
        let Some(request) = request else {
            break Ok(());
        };
        let answer = read_frame(&mut stream).and_then(|mut frame| {
            ResponseHeader::decode(
                &mut frame,
                ApiKey::Produce.response_header_version(PRODUCE_VERSION),
            )
            .map_err(|e| e.to_string())?;
            ProduceResponse::decode(&mut frame, PRODUCE_VERSION).map_err(|e| e.to_string())
        });
        match answer {
            Ok(response) => {
                let failed = response
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|p| p.error_code != 0);
                if let Some(failed) = failed {
                    if run.errors() == 0 {
                        eprintln!(
                            "spindle bench: produce to partition {}: error code {}",
                            failed.index, failed.error_code
                        );
                    }
                    run.error();
                } else {
                    run.count(request.messages, request.bytes);
                    if run.measuring() {
                        record(&mut local, request.sent.elapsed().as_micros() as u64);
                    }
                }
                answers += 1;
                if answers.is_multiple_of(LATENCY_MERGE_EVERY) {
                    run.merge(&mut local);
                }
            }
            Err(e) => {
                run.error();
                break Err(format!("receive: {e}"));
            }
        }
    };
    if result.is_err() {
        run.stop.store(true, Ordering::Relaxed);
        shared.changed.notify_all();
    }
    run.merge(&mut local);
    result
}

/// Partitions grouped by leader address.
fn by_leader(leaders: &BTreeMap<i32, String>) -> BTreeMap<String, Vec<i32>> {
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (partition, address) in leaders {
        out.entry(address.clone()).or_default().push(*partition);
    }
    out
}

/// Runs `bench produce` with the native engine.
pub fn run_produce(args: &ProduceArgs) -> Result<Summary, String> {
    args.validate()?;
    let leaders = leaders(
        &args.common.brokers,
        &args.common.topic,
        Some(args.partitions),
    )?;
    let per_batch = args.messages_per_batch();
    let all_partitions = leaders.len() as i32;
    let mut sources: Vec<(String, Vec<PrebuiltFrame>)> = Vec::new();
    for (address, partitions) in by_leader(&leaders) {
        let shape = BatchShape::new(args, &partitions, all_partitions);
        let mut key_at = 0;
        let frames = partitions
            .iter()
            .map(|&p| {
                let frame = shape.frame(p, per_batch, now_ms(), &mut key_at, None)?;
                Ok((frame, per_batch, per_batch * args.message_bytes as u64))
            })
            .collect::<Result<Vec<_>, String>>()?;
        sources.push((address, frames));
    }
    let run = Arc::new(Run::new(args.common.warmup()));
    let budget = Arc::new(Budget::new(args, &run));
    let senders = (args.producers * sources.len()) as f64;
    let progress = run.progress(args.message_bytes as u64);
    let mut threads = Vec::new();
    for _producer in 0..args.producers {
        for (address, frames) in &sources {
            let source = PrebuiltFrames {
                frames: frames.clone(),
                next: 0,
                budget: budget.clone(),
                limiter: (args.throughput > 0.0)
                    .then(|| RateLimiter::new(args.throughput / senders, Instant::now())),
            };
            threads.extend(pipeline(
                address,
                source,
                args.acks.code(),
                args.in_flight,
                run.clone(),
            )?);
        }
    }
    let joined = join_all(threads);
    drop(progress);
    joined?;
    args.common.plot_run(
        &format!(
            "bench produce: {} B messages, acks {:?}",
            args.message_bytes, args.acks
        ),
        &run,
    )?;
    Ok(run.summary())
}

/// Consumer threads' shares: partition `i` (in order) goes to consumer `i % consumers`;
/// each consumer has one thread per leader of its partitions.
fn consumer_shares(leaders: &BTreeMap<i32, String>, consumers: usize) -> Vec<(String, Vec<i32>)> {
    let mut shares: BTreeMap<(usize, String), Vec<i32>> = BTreeMap::new();
    for (index, (partition, address)) in leaders.iter().enumerate() {
        shares
            .entry((index % consumers, address.clone()))
            .or_default()
            .push(*partition);
    }
    shares
        .into_iter()
        .map(|((_, address), partitions)| (address, partitions))
        .collect()
}

/// A Fetch for `positions` (partition, offset).
fn fetch_request(
    topic: &str,
    positions: &[(i32, i64)],
    max_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    positions
                        .iter()
                        .map(|&(p, at)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(at)
                                .with_partition_max_bytes(max_bytes)
                        })
                        .collect(),
                ),
        ])
}

/// Fetch API version the engine speaks (Kafka 2.3+ and every Kafka-compatible broker).
const FETCH_VERSION: i16 = 11;

/// Calls `answer(position, records)` for each partition of a Fetch answer that has records,
/// with the reader's position for it; a partition error counts in `run`.
fn for_each_answer(
    response: &FetchResponse,
    positions: &mut [(i32, i64)],
    run: &Run,
    mut answer: impl FnMut(&mut i64, &Bytes) -> Result<(), String>,
) -> Result<(), String> {
    for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
        if partition.error_code != 0 {
            run.error();
            continue;
        }
        let Some(records) = &partition.records else {
            continue;
        };
        let position = positions
            .iter_mut()
            .find(|(p, _)| *p == partition.partition_index)
            .ok_or("answer for a partition not asked")?;
        answer(&mut position.1, records)?;
    }
    Ok(())
}

/// Walks the whole batches of one partition's answer at and after `position`, calling
/// `batch(header, bytes)` for each new one and moving `position` past it.
fn for_each_new_batch(
    records: &[u8],
    position: &mut i64,
    mut batch: impl FnMut(&RecordBatchHeader, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let mut at = 0usize;
    while at + RECORD_BATCH_HEADER_BYTES <= records.len() {
        let header =
            RecordBatchHeader::decode(&records[at..]).map_err(|e| format!("fetched batch: {e}"))?;
        let end = at + header.size_bytes();
        if end > records.len() {
            break; // a partial batch at the end of the answer
        }
        if header.next_offset() > *position {
            batch(&header, &records[at..end])?;
            *position = header.next_offset();
        }
        at = end;
    }
    Ok(())
}

/// Runs `bench consume` with the native engine: every partition from offset 0 up to the
/// high watermark seen at start, split over the consumers.
pub fn run_consume(args: &ConsumeArgs) -> Result<Summary, String> {
    let leaders = leaders(&args.common.brokers, &args.common.topic, None)?;
    let ends: BTreeMap<i32, i64> = end_offsets(&leaders, &args.common.topic)?;
    let run = Arc::new(Run::new(args.common.warmup()));
    // Consumed batch bytes per message are not known up front; the line shows 1 KiB units.
    let progress = run.progress(1024);
    let consumed = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for (address, partitions) in consumer_shares(&leaders, args.consumer.consumers) {
        let (run, consumed) = (run.clone(), consumed.clone());
        let ends: Vec<(i32, i64)> = partitions.iter().map(|p| (*p, ends[p])).collect();
        let (topic, fetch_bytes, passes, limit) = (
            args.common.topic.clone(),
            args.consumer.fetch_bytes,
            args.passes,
            args.messages,
        );
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut connection = Connection::connect(&address)?;
            let mut local = latency_histogram();
            let result = (|| {
                for _pass in 0..passes {
                    let mut positions: Vec<(i32, i64)> =
                        ends.iter().map(|&(p, _)| (p, 0)).collect();
                    loop {
                        if run.stopped() || (limit > 0 && consumed.load(Ordering::Relaxed) >= limit)
                        {
                            return Ok(());
                        }
                        let wanted: Vec<(i32, i64)> = positions
                            .iter()
                            .zip(&ends)
                            .filter(|((_, at), (_, end))| at < end)
                            .map(|(&position, _)| position)
                            .collect();
                        if wanted.is_empty() {
                            break;
                        }
                        let sent = Instant::now();
                        let response: FetchResponse = connection.call(
                            ApiKey::Fetch,
                            FETCH_VERSION,
                            &fetch_request(&topic, &wanted, fetch_bytes, 500),
                        )?;
                        if run.measuring() {
                            record(&mut local, sent.elapsed().as_micros() as u64);
                        }
                        for_each_answer(&response, &mut positions, &run, |position, records| {
                            let before = *position;
                            let mut bytes = 0u64;
                            for_each_new_batch(records, position, |_, batch| {
                                bytes += batch.len() as u64;
                                Ok(())
                            })?;
                            // The first batch may start before the position asked for.
                            let fresh = (*position - before).max(0) as u64;
                            consumed.fetch_add(fresh, Ordering::Relaxed);
                            run.count(fresh, bytes);
                            Ok(())
                        })?;
                    }
                }
                Ok(())
            })();
            run.merge(&mut local);
            if result.is_err() {
                run.stop.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    let joined = join_all(threads);
    drop(progress);
    joined?;
    args.common
        .plot_run(&format!("bench consume: {}", args.common.topic), &run)?;
    Ok(run.summary())
}

/// What an e2e consumer does with one fetched batch: decompress if needed, and record each
/// message's produce-to-consume latency from the send time at the start of its value.
/// Messages stamped in the same microsecond and read together have equal latencies: they
/// are recorded as one run (`record_n`), which keeps the consumer off the critical path.
fn e2e_batch(
    header: &RecordBatchHeader,
    batch: &[u8],
    from: i64,
    now_us: u64,
    local: &mut hdrhistogram::Histogram<u64>,
    measuring: bool,
) -> Result<u64, String> {
    let plain;
    let batch = if header.compression() != 0 {
        plain = decompress_batch(batch)?;
        &plain[..]
    } else {
        batch
    };
    let mut fresh = 0;
    let mut unstamped = false;
    let mut run: Option<(u64, u64)> = None; // (latency, count)
    for_each_record(batch, |index, _, value| {
        if header.base_offset + (index as i64) < from {
            return;
        }
        fresh += 1;
        if !measuring {
            return;
        }
        let Some(sent) = value.and_then(send_time) else {
            unstamped = true;
            return;
        };
        let latency = now_us.saturating_sub(sent);
        match &mut run {
            Some((value, count)) if *value == latency => *count += 1,
            _ => {
                if let Some((value, count)) = run.replace((latency, 1)) {
                    record_n(local, value, count);
                }
            }
        }
    })
    .ok_or("unreadable batch")?;
    if let Some((value, count)) = run {
        record_n(local, value, count);
    }
    if unstamped {
        return Err("a message without its send time".into());
    }
    Ok(fresh)
}

/// Runs `bench e2e` with the native engine: consumers start at the high watermarks seen
/// at start, then the producers (pipelined, paced) start.
pub fn run_e2e(args: &E2eArgs) -> Result<super::e2e::E2eOutcome, String> {
    let produce = &args.produce;
    let leaders = leaders(
        &produce.common.brokers,
        &produce.common.topic,
        Some(produce.partitions),
    )?;
    let starts: BTreeMap<i32, i64> = end_offsets(&leaders, &produce.common.topic)?;
    let clock = Clock::new();
    let consumed_run = Arc::new(Run::new(produce.common.warmup()));
    let produced_run = Arc::new(Run::new(produce.common.warmup()));
    let progress = consumed_run.progress(produce.message_bytes as u64);
    let mut threads = Vec::new();
    for (address, partitions) in consumer_shares(&leaders, args.consumer.consumers) {
        let (run, produced_run, clock) = (consumed_run.clone(), produced_run.clone(), clock);
        let mut positions: Vec<(i32, i64)> = partitions.iter().map(|p| (*p, starts[p])).collect();
        let (topic, fetch_bytes, message_bytes) = (
            produce.common.topic.clone(),
            args.consumer.fetch_bytes,
            produce.message_bytes as u64,
        );
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut connection = Connection::connect(&address)?;
            let mut local = latency_histogram();
            let mut drain_deadline = None;
            let result = (|| loop {
                if run.stopped() {
                    return Ok(());
                }
                // Done once the producers finished and everything acknowledged was read (by
                // all consumers), or the drain time ran out.
                if produced_run.stopped() {
                    let deadline = *drain_deadline.get_or_insert(Instant::now() + DRAIN_MAX);
                    if run.total() >= produced_run.total() || Instant::now() > deadline {
                        return Ok(());
                    }
                }
                let response: FetchResponse = connection.call(
                    ApiKey::Fetch,
                    FETCH_VERSION,
                    &fetch_request(&topic, &positions, fetch_bytes, 100),
                )?;
                let now_us = clock.now_micros();
                let measuring = run.measuring();
                let mut fresh = 0u64;
                for_each_answer(&response, &mut positions, &run, |position, records| {
                    let from = *position;
                    for_each_new_batch(records, position, |header, batch| {
                        fresh += e2e_batch(header, batch, from, now_us, &mut local, measuring)?;
                        Ok(())
                    })
                })?;
                if fresh > 0 {
                    run.count(fresh, fresh * message_bytes);
                    // Let the progress line see latencies as they come.
                    run.merge(&mut local);
                }
            })();
            run.merge(&mut local);
            if result.is_err() {
                run.stop.store(true, Ordering::Relaxed);
            }
            result
        }));
    }

    let budget = Arc::new(Budget::new(produce, &produced_run));
    let groups = by_leader(&leaders);
    let senders = (produce.producers * groups.len()) as f64;
    let mut producers = Vec::new();
    let started = Instant::now();
    for _producer in 0..produce.producers {
        for (address, partitions) in &groups {
            let source = FreshBatches {
                shape: BatchShape::new(produce, partitions, leaders.len() as i32),
                partitions: partitions.clone(),
                next: 0,
                key_at: 0,
                per_batch: produce.messages_per_batch(),
                linger: produce.linger(),
                pacer: (produce.throughput > 0.0)
                    .then(|| Pacer::new(produce.throughput / senders, started)),
                budget: budget.clone(),
                clock,
                frame: BytesMut::new(),
            };
            producers.extend(pipeline(
                address,
                source,
                produce.acks.code(),
                produce.in_flight,
                produced_run.clone(),
            )?);
        }
    }
    let produced_result = join_all(producers);
    // Tells the consumers to drain what was acknowledged, then stop.
    produced_run.stop.store(true, Ordering::Relaxed);
    if produced_result.is_err() {
        consumed_run.stop.store(true, Ordering::Relaxed);
    }
    let consumed_result = join_all(threads);
    drop(progress);
    produced_result?;
    consumed_result?;
    super::e2e::outcome(produce, "native", &consumed_run, &produced_run)
}

/// How long consumers keep reading after the producers finished.
const DRAIN_MAX: Duration = Duration::from_secs(30);
