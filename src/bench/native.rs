//! The native engine: speaks the Kafka protocol itself so the generator is never the
//! bottleneck. Record batches are built once per partition and their whole Produce request
//! frames encoded once; a send only patches the correlation id. Each producer opens one
//! connection per partition leader (a sender and a receiver thread), keeping up to
//! `--in-flight` requests outstanding; latency is measured per request, send to answer.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::ProduceArgs;
use super::stats::{Summary, Timeline, latency_histogram, record, spawn_progress};
use crate::protocol::record_batch::build_batch;

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
    let mut body = vec![0u8; size as usize];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("receive: {e}"))?;
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

/// Shared by every sender: the message budget and the stop signal.
struct Budget {
    /// Messages still to send (by count), or unlimited with a deadline.
    remaining: AtomicU64,
    deadline: Option<Instant>,
    stop: AtomicBool,
}

impl Budget {
    /// Takes `messages` from the budget; `false` when the run is over.
    fn take(&self, messages: u64) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        if let Some(deadline) = self.deadline {
            return Instant::now() < deadline;
        }
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(messages)
            })
            .is_ok()
    }
}

#[derive(Default)]
struct Totals {
    messages: u64,
    errors: u64,
    first_send: Option<Instant>,
    last_answer: Option<Instant>,
}

/// Runs `bench produce` with the native engine.
pub fn run_produce(args: &ProduceArgs) -> Result<Summary, String> {
    args.validate()?;
    let leaders = leaders(&args.brokers, &args.topic, Some(args.partitions))?;
    let per_batch = (args.batch_bytes / args.message_bytes).max(1);
    // Incompressible-looking values so no layer can cheat on repetition.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let values: Vec<Vec<u8>> = (0..per_batch)
        .map(|_| {
            (0..args.message_bytes)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect()
        })
        .collect();
    let records: Vec<(Option<&[u8]>, &[u8])> =
        values.iter().map(|v| (None, v.as_slice())).collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let batch = Bytes::from(build_batch(now_ms, &records));
    let batch_value_bytes = (per_batch * args.message_bytes) as u64;
    // One encoded Produce frame per partition; only the correlation id changes.
    let mut frames: BTreeMap<String, Vec<BytesMut>> = BTreeMap::new();
    for (&partition, address) in &leaders {
        let request = ProduceRequest::default()
            .with_acks(args.acks.code())
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(args.topic.clone())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.clone())),
                    ]),
            ]);
        frames
            .entry(address.clone())
            .or_default()
            .push(encode_request(
                ApiKey::Produce,
                PRODUCE_VERSION,
                0,
                &request,
            )?);
    }
    let budget = Arc::new(Budget {
        remaining: AtomicU64::new(args.messages),
        deadline: args.duration().map(|d| Instant::now() + d),
        stop: AtomicBool::new(false),
    });
    let totals = Arc::new(Mutex::new(Totals::default()));
    let histogram = Arc::new(Mutex::new(latency_histogram()));
    let timeline = Arc::new(Timeline::new(Instant::now()));
    let finished = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress(
        timeline.clone(),
        histogram.clone(),
        args.message_bytes as u64,
        finished.clone(),
    );
    let mut threads = Vec::new();
    for _producer in 0..args.producers {
        for (address, frames) in &frames {
            let stream = Connection::connect(address)?.stream;
            let sender = Sender {
                stream: stream.try_clone().map_err(|e| e.to_string())?,
                frames: frames.clone(),
                timeline: timeline.clone(),
                per_batch: per_batch as u64,
                in_flight_max: args.in_flight,
                acks: args.acks.code(),
            };
            let receiver_stream = stream;
            let pending: Arc<(Mutex<VecDeque<Instant>>, Condvar)> =
                Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
            let done = Arc::new(AtomicBool::new(false));
            if args.acks.code() != 0 {
                let shared = Receiving {
                    pending: pending.clone(),
                    done: done.clone(),
                    totals: totals.clone(),
                    histogram: histogram.clone(),
                    budget: budget.clone(),
                    timeline: timeline.clone(),
                    per_batch: per_batch as u64,
                };
                threads.push(std::thread::spawn(move || receive(receiver_stream, shared)));
            }
            let (budget, totals) = (budget.clone(), totals.clone());
            threads.push(std::thread::spawn(move || {
                sender.run(&budget, &pending, &done, &totals)
            }));
        }
    }
    let joined: Result<(), String> = threads.into_iter().try_for_each(|thread| {
        thread
            .join()
            .map_err(|_| "a bench thread panicked".to_string())
    });
    finished.store(true, Ordering::Relaxed);
    let _ = progress.join();
    joined?;
    let totals = totals.lock().expect("totals");
    let seconds = match (totals.first_send, totals.last_answer) {
        (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let histogram = histogram.lock().expect("histogram");
    super::write_plot(
        &args.plot,
        &format!(
            "bench produce: {} B messages, acks {:?}",
            args.message_bytes, args.acks
        ),
        &histogram,
        &timeline.buckets(),
    )?;
    Ok(Summary::new(
        totals.messages,
        totals.messages / per_batch as u64 * batch_value_bytes,
        totals.errors,
        seconds,
        &histogram,
    ))
}

struct Sender {
    stream: TcpStream,
    frames: Vec<BytesMut>,
    timeline: Arc<Timeline>,
    per_batch: u64,
    in_flight_max: usize,
    acks: i16,
}

impl Sender {
    fn run(
        mut self,
        budget: &Budget,
        pending: &(Mutex<VecDeque<Instant>>, Condvar),
        done: &AtomicBool,
        totals: &Mutex<Totals>,
    ) {
        let mut correlation_id = 0i32;
        let mut next = 0usize;
        let started = Instant::now();
        totals
            .lock()
            .expect("totals")
            .first_send
            .get_or_insert(started);
        while budget.take(self.per_batch) {
            if self.acks != 0 {
                let (queue, wake) = pending;
                let mut queue = queue.lock().expect("pending");
                while queue.len() >= self.in_flight_max {
                    queue = wake.wait(queue).expect("pending");
                }
                queue.push_back(Instant::now());
            }
            correlation_id = correlation_id.wrapping_add(1);
            let count = self.frames.len();
            let frame = &mut self.frames[next];
            next = (next + 1) % count;
            frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());
            if let Err(e) = self.stream.write_all(frame) {
                eprintln!("spindle bench: send failed: {e}");
                budget.stop.store(true, Ordering::Relaxed);
                break;
            }
            if self.acks == 0 {
                self.timeline.add(self.per_batch);
                let mut totals = totals.lock().expect("totals");
                totals.messages += self.per_batch;
                totals.last_answer = Some(Instant::now());
            }
        }
        done.store(true, Ordering::Relaxed);
        pending.1.notify_all();
    }
}

/// What a receiver thread shares with the rest of the run.
struct Receiving {
    pending: Arc<(Mutex<VecDeque<Instant>>, Condvar)>,
    done: Arc<AtomicBool>,
    totals: Arc<Mutex<Totals>>,
    histogram: Arc<Mutex<Histogram<u64>>>,
    budget: Arc<Budget>,
    timeline: Arc<Timeline>,
    per_batch: u64,
}

/// Answers between merges of a receiver's latencies into the shared histogram (what the
/// progress line reads).
const LATENCY_MERGE_EVERY: u64 = 256;

fn receive(mut stream: TcpStream, shared: Receiving) {
    let Receiving {
        pending,
        done,
        totals,
        histogram,
        budget,
        timeline,
        per_batch,
    } = shared;
    let mut local = latency_histogram();
    let mut answers = 0u64;
    let (mut messages, mut errors) = (0u64, 0u64);
    loop {
        let outstanding = pending.0.lock().expect("pending").len();
        if outstanding == 0 && done.load(Ordering::Relaxed) {
            break;
        }
        if outstanding == 0 {
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        let answer = read_frame(&mut stream).and_then(|mut frame| {
            ResponseHeader::decode(
                &mut frame,
                ApiKey::Produce.response_header_version(PRODUCE_VERSION),
            )
            .map_err(|e| e.to_string())?;
            ProduceResponse::decode(&mut frame, PRODUCE_VERSION).map_err(|e| e.to_string())
        });
        let sent = pending.0.lock().expect("pending").pop_front();
        pending.1.notify_all();
        match answer {
            Ok(response) => {
                let failed = response
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .any(|p| p.error_code != 0);
                if failed {
                    errors += 1;
                } else {
                    messages += per_batch;
                    timeline.add(per_batch);
                }
                if let Some(sent) = sent {
                    record(&mut local, sent.elapsed().as_micros() as u64);
                }
                answers += 1;
                if answers.is_multiple_of(LATENCY_MERGE_EVERY) {
                    histogram
                        .lock()
                        .expect("histogram")
                        .add(&local)
                        .expect("same bounds");
                    local.reset();
                }
            }
            Err(e) => {
                eprintln!("spindle bench: receive failed: {e}");
                budget.stop.store(true, Ordering::Relaxed);
                errors += 1;
                // Release a sender waiting for room; it sees the stop and ends.
                pending.0.lock().expect("pending").clear();
                pending.1.notify_all();
                break;
            }
        }
    }
    let mut totals = totals.lock().expect("totals");
    totals.messages += messages;
    totals.errors += errors;
    totals.last_answer = Some(
        totals
            .last_answer
            .map_or(Instant::now(), |t| t.max(Instant::now())),
    );
    histogram
        .lock()
        .expect("histogram")
        .add(&local)
        .expect("same bounds");
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

/// Runs `bench consume` with the native engine: one thread and connection per partition
/// leader, one Fetch in flight each, from offset 0 up to the high watermark seen at start.
pub fn run_consume(args: &super::ConsumeArgs) -> Result<Summary, String> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
    let leaders = leaders(&args.brokers, &args.topic, None)?;
    let partitions = high_watermarks(&leaders, &args.topic)?;
    let mut by_leader: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for (partition, address, end) in partitions {
        by_leader.entry(address).or_default().push((partition, end));
    }
    super::validate_plot(&args.plot)?;
    let totals = Arc::new(Mutex::new((0u64, 0u64, 0u64))); // messages, bytes, errors
    let histogram = Arc::new(Mutex::new(latency_histogram()));
    let started = Instant::now();
    let timeline = Arc::new(Timeline::new(started));
    let finished = Arc::new(AtomicBool::new(false));
    // Consumed batch bytes per message are not known up front; the line shows 1 KiB units.
    let progress = spawn_progress(timeline.clone(), histogram.clone(), 1024, finished.clone());
    let mut threads = Vec::new();
    for (address, partitions) in by_leader {
        let (totals, histogram, timeline) = (totals.clone(), histogram.clone(), timeline.clone());
        let (topic, fetch_bytes, passes, limit) = (
            args.topic.clone(),
            args.fetch_bytes,
            args.passes,
            args.messages,
        );
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut connection = Connection::connect(&address)?;
            let mut local = latency_histogram();
            let (mut messages, mut bytes, mut errors) = (0u64, 0u64, 0u64);
            for _pass in 0..passes {
                let mut positions: Vec<(i32, i64, i64)> =
                    partitions.iter().map(|&(p, end)| (p, 0, end)).collect();
                while positions.iter().any(|&(_, at, end)| at < end)
                    && (limit == 0 || messages < limit)
                {
                    let request = FetchRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_max_wait_ms(500)
                        .with_min_bytes(1)
                        .with_max_bytes(fetch_bytes)
                        .with_session_epoch(-1)
                        .with_topics(vec![
                            FetchTopic::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                                .with_partitions(
                                    positions
                                        .iter()
                                        .filter(|&&(_, at, end)| at < end)
                                        .map(|&(p, at, _)| {
                                            FetchPartition::default()
                                                .with_partition(p)
                                                .with_fetch_offset(at)
                                                .with_partition_max_bytes(fetch_bytes)
                                        })
                                        .collect(),
                                ),
                        ]);
                    let sent = Instant::now();
                    let response: FetchResponse = connection.call(ApiKey::Fetch, 11, &request)?;
                    record(&mut local, sent.elapsed().as_micros() as u64);
                    for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
                        if partition.error_code != 0 {
                            errors += 1;
                            continue;
                        }
                        let Some(records) = &partition.records else {
                            continue;
                        };
                        let position = positions
                            .iter_mut()
                            .find(|(p, _, _)| *p == partition.partition_index)
                            .ok_or("answer for a partition not asked")?;
                        let mut at = 0usize;
                        while at + crate::protocol::record_batch::RECORD_BATCH_HEADER_BYTES
                            <= records.len()
                        {
                            let header = crate::protocol::RecordBatchHeader::decode(&records[at..])
                                .map_err(|e| format!("fetched batch: {e}"))?;
                            if at + header.size_bytes() > records.len() {
                                break; // a partial batch at the end of the answer
                            }
                            at += header.size_bytes();
                            if header.next_offset() <= position.1 {
                                continue;
                            }
                            let fresh =
                                (header.next_offset() - position.1.max(header.base_offset)) as u64;
                            messages += fresh;
                            timeline.add(fresh);
                            bytes += header.size_bytes() as u64;
                            position.1 = header.next_offset();
                        }
                    }
                }
            }
            let mut totals = totals.lock().expect("totals");
            totals.0 += messages;
            totals.1 += bytes;
            totals.2 += errors;
            histogram
                .lock()
                .expect("histogram")
                .add(&local)
                .expect("same bounds");
            Ok(())
        }));
    }
    let joined: Result<(), String> = threads.into_iter().try_for_each(|thread| {
        thread
            .join()
            .map_err(|_| "a bench thread panicked".to_string())?
    });
    finished.store(true, Ordering::Relaxed);
    let _ = progress.join();
    joined?;
    let seconds = started.elapsed().as_secs_f64();
    let (messages, bytes, errors) = *totals.lock().expect("totals");
    let histogram = histogram.lock().expect("histogram");
    super::write_plot(
        &args.plot,
        &format!("bench consume: {}", args.topic),
        &histogram,
        &timeline.buckets(),
    )?;
    Ok(Summary::new(messages, bytes, errors, seconds, &histogram))
}
