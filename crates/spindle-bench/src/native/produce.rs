//! Native produce: per partition leader, one connection with a sender thread keeping up to
//! `--in-flight` pre-built (or, for e2e, freshly stamped) Produce frames outstanding and a
//! receiver thread timing each answer. Client threads only.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{
    Connection, FrameSource, PRODUCE_VERSION, PrebuiltFrame, by_leader, encode_request, leaders,
    now_ms, read_frame,
};
use crate::ProduceArgs;
use crate::e2e::{Clock, SEND_TIME_BYTES};
use crate::keys::{keys_for_partition, payload};
use crate::rate::{Pacer, RateLimiter};
use crate::stats::{Budget, Run, Summary, join_all, latency_histogram, record};
use spindle_protocol::compression::Codec;
use spindle_protocol::record_batch::{TimedRecord, build_batch_with_timestamps};

/// Keys per partition in a keyed run's pool (cycled).
pub(super) const KEY_POOL: usize = 4096;

/// One request to send: its encoded frame (the correlation id is patched by the sender),
/// and the messages and record bytes it carries.
pub(super) struct Outgoing<'a> {
    pub(super) frame: &'a mut [u8],
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// `produce`: the same pre-built frames, one per partition of this leader, in turn; whole
/// batches taken from the budget, paced by `--throughput` if given.
pub(super) struct PrebuiltFrames {
    pub(super) frames: Vec<PrebuiltFrame>,
    pub(super) next: usize,
    pub(super) budget: Arc<Budget>,
    pub(super) limiter: Option<RateLimiter>,
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
pub(super) struct BatchShape {
    pub(super) topic: String,
    pub(super) acks: i16,
    pub(super) message_bytes: usize,
    pub(super) codec: Codec,
    /// Per partition, the keys that belong to it (empty when unkeyed).
    pub(super) keys: BTreeMap<i32, Vec<[u8; 8]>>,
    pub(super) padding: Arc<Vec<u8>>,
}

impl BatchShape {
    pub(super) fn new(args: &ProduceArgs, partitions: &[i32], all_partitions: i32) -> BatchShape {
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
    pub(super) fn frame(
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

/// `e2e`: a fresh batch per request, each message stamped with the time it became due
/// (pacing and linger included), partitions of this leader in turn.
pub(super) struct FreshBatches {
    pub(super) shape: BatchShape,
    pub(super) partitions: Vec<i32>,
    pub(super) next: usize,
    pub(super) key_at: usize,
    pub(super) per_batch: u64,
    pub(super) linger: Duration,
    pub(super) pacer: Option<Pacer>,
    pub(super) budget: Arc<Budget>,
    pub(super) clock: Clock,
    pub(super) frame: BytesMut,
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
pub(super) struct Pending {
    pub(super) sent: Instant,
    pub(super) messages: u64,
    pub(super) bytes: u64,
}

/// The queue a connection's sender and receiver share, bounded by `--in-flight`.
pub(super) struct InFlight {
    pub(super) queue: Mutex<(VecDeque<Pending>, bool)>, // (pending, sender done)
    pub(super) changed: Condvar,
    pub(super) limit: usize,
}

/// Runs one pipelined producer connection: this thread sends, a second one reads the
/// answers in order. Acknowledged messages count in `run` (with their request latency).
pub(super) fn pipeline(
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

pub(super) fn send(
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
pub(super) const LATENCY_MERGE_EVERY: u64 = 256;

pub(super) fn receive(mut stream: TcpStream, shared: &InFlight, run: &Run) -> Result<(), String> {
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
            "bench produce: {} B messages, {}",
            args.message_bytes, args.acks
        ),
        &run,
    )?;
    Ok(run.summary())
}
