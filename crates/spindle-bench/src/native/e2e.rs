//! Native e2e: produce at a paced rate with every message stamped with its due time, and
//! consume at once, recording produce-to-consume latency. Client threads only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, FetchResponse};

use super::consume::{
    FETCH_VERSION, consumer_shares, fetch_request, for_each_answer, for_each_new_batch,
};
use super::produce::{BatchShape, FreshBatches, pipeline};
use super::{Connection, by_leader, end_offsets, leaders};
use crate::E2eArgs;
use crate::e2e::{Clock, send_time};
use crate::rate::Pacer;
use crate::stats::{Budget, Run, join_all, latency_histogram, record_n};
use spindle_protocol::compression::decompress_batch;
use spindle_protocol::record_batch::{RecordBatchHeader, for_each_record};

/// What an e2e consumer does with one fetched batch: decompress if needed, and record each
/// message's produce-to-consume latency from the send time at the start of its value.
/// Messages stamped in the same microsecond and read together have equal latencies: they
/// are recorded as one run (`record_n`), which keeps the consumer off the critical path.
pub(super) fn e2e_batch(
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
pub fn run_e2e(args: &E2eArgs) -> Result<crate::e2e::E2eOutcome, String> {
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
    crate::e2e::outcome(produce, "native", &consumed_run, &produced_run)
}

/// How long consumers keep reading after the producers finished.
pub(super) const DRAIN_MAX: Duration = Duration::from_secs(30);
