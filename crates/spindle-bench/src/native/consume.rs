//! Native consume: one thread per (consumer, partition leader), one Fetch in flight each,
//! counting every record of every new batch. Client threads only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Connection, end_offsets, leaders};
use crate::ConsumeArgs;
use crate::stats::{Run, Summary, join_all, latency_histogram, record};
use spindle_protocol::record_batch::{RECORD_BATCH_HEADER_BYTES, RecordBatchHeader};

/// Consumer threads' shares: partition `i` (in order) goes to consumer `i % consumers`;
/// each consumer has one thread per leader of its partitions.
pub(super) fn consumer_shares(
    leaders: &BTreeMap<i32, String>,
    consumers: usize,
) -> Vec<(String, Vec<i32>)> {
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
pub(super) fn fetch_request(
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
pub(super) const FETCH_VERSION: i16 = 11;

/// Calls `answer(position, records)` for each partition of a Fetch answer that has records,
/// with the reader's position for it; a partition error counts in `run`.
pub(super) fn for_each_answer(
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
pub(super) fn for_each_new_batch(
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
