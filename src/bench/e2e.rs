//! `bench e2e` (native engine): producers and consumers at once. Every record's value starts
//! with its send time (microseconds since the Unix epoch, big-endian); consumers read the
//! topic from the high watermarks seen at start and record, per message, the time from send
//! to consume. Producer and consumer run on this machine, so they share a clock.
//!
//! Producers: one thread per partition leader per producer, one request in flight per
//! connection (latency, not peak throughput, is the point), paced by `--throughput`.
//! Consumers: one thread per partition leader, one Fetch in flight, long-polling.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::ProduceArgs;
use super::native::{Connection, high_watermarks, leaders};
use super::rate::RateLimiter;
use super::stats::{Summary, Timeline, latency_histogram, record, spawn_progress};
use crate::protocol::record_batch::{RecordBatchHeader, build_batch, record_keys_and_values};

/// Bytes at the start of each value holding its send time.
pub const SEND_TIME_BYTES: usize = 8;
/// How long consumers keep reading after the producers finished.
const DRAIN_MAX: Duration = Duration::from_secs(30);

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// What an e2e run saw: produced (acknowledged) and consumed counts and the latency summary.
pub struct E2eOutcome {
    pub produced: u64,
    pub summary: Summary,
}

pub fn run_e2e(args: &ProduceArgs) -> Result<E2eOutcome, String> {
    args.validate()?;
    if args.acks.code() == 0 {
        return Err("e2e counts acknowledged messages: use --acks 1 or all".into());
    }
    if args.message_bytes < SEND_TIME_BYTES {
        return Err(format!(
            "e2e needs --message-bytes >= {SEND_TIME_BYTES} (the send time)"
        ));
    }
    let leaders = leaders(&args.brokers, &args.topic, Some(args.partitions))?;
    let start_offsets: BTreeMap<i32, i64> = high_watermarks(&leaders, &args.topic)?
        .into_iter()
        .map(|(partition, _, end)| (partition, end))
        .collect();
    let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (partition, address) in &leaders {
        by_leader
            .entry(address.clone())
            .or_default()
            .push(*partition);
    }
    let per_batch = (args.batch_bytes / args.message_bytes).max(1) as u64;
    let senders = (args.producers * by_leader.len()) as f64;
    let remaining = Arc::new(AtomicU64::new(args.messages));
    let deadline = args.duration().map(|d| Instant::now() + d);
    let produced = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let producing = Arc::new(AtomicU64::new((args.producers * by_leader.len()) as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let histogram = Arc::new(Mutex::new(latency_histogram()));
    let consumed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let timeline = Arc::new(Timeline::new(started));
    let finished = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress(
        timeline.clone(),
        histogram.clone(),
        args.message_bytes as u64,
        finished.clone(),
    );
    let mut threads = Vec::new();

    for (address, partitions) in &by_leader {
        let (address, partitions) = (address.clone(), partitions.clone());
        let timeline = timeline.clone();
        let (topic, histogram, consumed, produced, producing, stop) = (
            args.topic.clone(),
            histogram.clone(),
            consumed.clone(),
            produced.clone(),
            producing.clone(),
            stop.clone(),
        );
        let mut positions: Vec<(i32, i64)> = partitions
            .iter()
            .map(|p| (*p, start_offsets.get(p).copied().unwrap_or(0)))
            .collect();
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut connection = Connection::connect(&address)?;
            let mut local = latency_histogram();
            let mut drain_deadline = None;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // Stop once producers are done and everything they got acknowledged was read
                // (by all consumers), or the drain time ran out.
                if producing.load(Ordering::Relaxed) == 0 {
                    let deadline = *drain_deadline.get_or_insert(Instant::now() + DRAIN_MAX);
                    if consumed.load(Ordering::Relaxed) >= produced.load(Ordering::Relaxed)
                        || Instant::now() > deadline
                    {
                        break;
                    }
                }
                let request = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(100)
                    .with_min_bytes(1)
                    .with_max_bytes(16 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(
                                positions
                                    .iter()
                                    .map(|&(p, at)| {
                                        FetchPartition::default()
                                            .with_partition(p)
                                            .with_fetch_offset(at)
                                            .with_partition_max_bytes(8 << 20)
                                    })
                                    .collect(),
                            ),
                    ]);
                let response: FetchResponse = connection.call(ApiKey::Fetch, 11, &request)?;
                let now = now_micros();
                let mut fresh = 0u64;
                for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
                    let Some(records) = partition
                        .records
                        .as_ref()
                        .filter(|_| partition.error_code == 0)
                    else {
                        continue;
                    };
                    let position = positions
                        .iter_mut()
                        .find(|(p, _)| *p == partition.partition_index)
                        .ok_or("answer for a partition not asked")?;
                    let mut at = 0usize;
                    while at < records.len() {
                        let Ok(header) = RecordBatchHeader::decode(&records[at..]) else {
                            break;
                        };
                        let end = at + header.size_bytes();
                        if end > records.len() {
                            break;
                        }
                        let batch = &records[at..end];
                        at = end;
                        if header.next_offset() <= position.1 {
                            continue;
                        }
                        let pairs = record_keys_and_values(batch).ok_or("unreadable batch")?;
                        for (index, (_, value)) in pairs.iter().enumerate() {
                            if header.base_offset + (index as i64) < position.1 {
                                continue;
                            }
                            let sent = value
                                .and_then(|v| v.get(..SEND_TIME_BYTES))
                                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
                                .unwrap_or(now);
                            record(&mut local, now.saturating_sub(sent));
                            fresh += 1;
                        }
                        position.1 = header.next_offset();
                    }
                }
                if fresh > 0 {
                    consumed.fetch_add(fresh, Ordering::Relaxed);
                    timeline.add(fresh);
                    // Let the progress line see latencies as they come.
                    histogram
                        .lock()
                        .expect("histogram")
                        .add(&local)
                        .expect("same bounds");
                    local.reset();
                }
            }
            histogram
                .lock()
                .expect("histogram")
                .add(&local)
                .expect("same bounds");
            Ok(())
        }));
    }

    for _producer in 0..args.producers {
        for (address, partitions) in &by_leader {
            let (address, partitions) = (address.clone(), partitions.clone());
            let (topic, remaining, produced, errors, producing, stop) = (
                args.topic.clone(),
                remaining.clone(),
                produced.clone(),
                errors.clone(),
                producing.clone(),
                stop.clone(),
            );
            let (message_bytes, acks, throughput) =
                (args.message_bytes, args.acks.code(), args.throughput);
            threads.push(std::thread::spawn(move || -> Result<(), String> {
                let result = (|| -> Result<(), String> {
                    let mut connection = Connection::connect(&address)?;
                    let mut limiter = (throughput > 0.0)
                        .then(|| RateLimiter::new(throughput / senders, Instant::now()));
                    let padding = vec![0u8; message_bytes - SEND_TIME_BYTES];
                    let mut next = 0usize;
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        let more = match deadline {
                            Some(deadline) => Instant::now() < deadline,
                            None => remaining
                                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                                    left.checked_sub(per_batch)
                                })
                                .is_ok(),
                        };
                        if !more {
                            return Ok(());
                        }
                        if let Some(limiter) = &mut limiter {
                            limiter.wait(per_batch);
                        }
                        let sent = now_micros().to_be_bytes();
                        let values: Vec<Vec<u8>> = (0..per_batch)
                            .map(|_| [sent.as_slice(), padding.as_slice()].concat())
                            .collect();
                        let records: Vec<(Option<&[u8]>, &[u8])> =
                            values.iter().map(|v| (None, v.as_slice())).collect();
                        let batch =
                            Bytes::from(build_batch((now_micros() / 1000) as i64, &records));
                        let partition = partitions[next];
                        next = (next + 1) % partitions.len();
                        let request = ProduceRequest::default()
                            .with_acks(acks)
                            .with_timeout_ms(30_000)
                            .with_topic_data(vec![
                                TopicProduceData::default()
                                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                                    .with_partition_data(vec![
                                        PartitionProduceData::default()
                                            .with_index(partition)
                                            .with_records(Some(batch)),
                                    ]),
                            ]);
                        let response: ProduceResponse =
                            connection.call(ApiKey::Produce, 9, &request)?;
                        let failed = response
                            .responses
                            .iter()
                            .flat_map(|t| t.partition_responses.iter())
                            .any(|p| p.error_code != 0);
                        if failed {
                            errors.fetch_add(1, Ordering::Relaxed);
                        } else {
                            produced.fetch_add(per_batch, Ordering::Relaxed);
                        }
                    }
                })();
                producing.fetch_sub(1, Ordering::Relaxed);
                if result.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                result
            }));
        }
    }
    let mut failure = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => failure = Some(reason),
            Err(_) => failure = Some("a bench thread panicked".into()),
        }
    }
    finished.store(true, Ordering::Relaxed);
    let _ = progress.join();
    if let Some(reason) = failure {
        return Err(reason);
    }
    let seconds = started.elapsed().as_secs_f64();
    let consumed = consumed.load(Ordering::Relaxed);
    let histogram = histogram.lock().expect("histogram");
    super::write_plot(
        &args.plot,
        &format!(
            "bench e2e: {} B messages, acks {:?}, target {} msg/s",
            args.message_bytes, args.acks, args.throughput
        ),
        &histogram,
        &timeline.buckets(),
    )?;
    Ok(E2eOutcome {
        produced: produced.load(Ordering::Relaxed),
        summary: Summary::new(
            consumed,
            consumed * args.message_bytes as u64,
            errors.load(Ordering::Relaxed),
            seconds,
            &histogram,
        ),
    })
}
