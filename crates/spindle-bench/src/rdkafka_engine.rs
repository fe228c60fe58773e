//! The rdkafka engine: the same workloads through librdkafka, configured from the bench's
//! flags the way a Kafka application would configure it (acks, linger.ms, batch.size,
//! compression.type, max.in.flight, the murmur2 partitioner of the Java client). Its
//! numbers are comparable across Kafka-compatible brokers and with other librdkafka tools;
//! it is not meant to reach the broker's peak (the native engine is).
//!
//! Produce latency is per message, from `send()` to its delivery report (linger and
//! batching included). Consume has no per-request view in librdkafka: its latency fields
//! stay empty (zeros). e2e latency is per message, from the send time stamped into its
//! value to the consumer reading it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::e2e::{Clock, SEND_TIME_BYTES, send_time};
use super::keys::payload;
use super::native::{end_offsets, high_watermarks, leaders};
use super::rate::RateLimiter;
use super::stats::{Budget, Run, Summary, join_all, latency_histogram, record};
use super::{ConsumeArgs, ConsumerArgs, E2eArgs, LoadEngine, ProduceArgs};

/// The rdkafka engine.
pub struct Rdkafka;

impl LoadEngine for Rdkafka {
    fn produce(&self, args: &ProduceArgs) -> Result<Summary, String> {
        args.validate()?;
        leaders(
            &args.common.brokers,
            &args.common.topic,
            Some(args.partitions),
        )?;
        let run = Arc::new(Run::new(args.common.warmup()));
        let progress = run.progress(args.message_bytes as u64);
        let result = produce_all(args, &run, None);
        drop(progress);
        result?;
        args.common.plot_run(
            &format!(
                "bench produce (rdkafka): {} B messages, {}",
                args.message_bytes, args.acks
            ),
            &run,
        )?;
        Ok(run.summary())
    }

    fn consume(&self, args: &ConsumeArgs) -> Result<Summary, String> {
        let leaders = leaders(&args.common.brokers, &args.common.topic, None)?;
        let ends: BTreeMap<i32, i64> = end_offsets(&leaders, &args.common.topic)?;
        let run = Arc::new(Run::new(args.common.warmup()));
        let progress = run.progress(1024);
        let result = consume_all(
            &args.common.brokers,
            &args.common.topic,
            &args.consumer,
            ends.iter().map(|(&p, _)| (p, Offset::Beginning)).collect(),
            Ending::AtHighWatermarks {
                ends: Mutex::new(ends.into_iter().filter(|&(_, end)| end > 0).collect()),
                limit: args.messages,
            },
            &run,
            None,
        );
        drop(progress);
        result?;
        args.common.plot_run(
            &format!("bench consume (rdkafka): {}", args.common.topic),
            &run,
        )?;
        Ok(run.summary_from_first_completion())
    }

    fn e2e(&self, args: &E2eArgs) -> Result<super::e2e::E2eOutcome, String> {
        let produce = &args.produce;
        let leaders = leaders(
            &produce.common.brokers,
            &produce.common.topic,
            Some(produce.partitions),
        )?;
        let starts: Vec<(i32, Offset)> = high_watermarks(&leaders, &produce.common.topic)?
            .into_iter()
            .map(|(partition, _, end)| (partition, Offset::Offset(end)))
            .collect();
        if let Some(group) = &args.consumer.group {
            // The group starts where the topic ends now, whatever it committed before.
            commit_offsets(
                &produce.common.brokers,
                group,
                &produce.common.topic,
                &starts,
            )?;
        }
        let clock = Clock::new();
        let consumed = Arc::new(Run::new(produce.common.warmup()));
        let produced = Arc::new(Run::new(produce.common.warmup()));
        let progress = consumed.progress(produce.message_bytes as u64);
        let assigned = Arc::new(AtomicI64::new(0));
        let consumers = {
            let (brokers, topic, consumer) = (
                produce.common.brokers.clone(),
                produce.common.topic.clone(),
                args.consumer.clone(),
            );
            let (consumed, produced, assigned) =
                (consumed.clone(), produced.clone(), assigned.clone());
            std::thread::spawn(move || {
                let result = consume_all(
                    &brokers,
                    &topic,
                    &consumer,
                    starts,
                    Ending::AfterProducers {
                        produced: produced.clone(),
                        assigned,
                    },
                    &consumed,
                    Some(clock),
                );
                if result.is_err() {
                    produced.stop.store(true, Ordering::Relaxed);
                }
                result
            })
        };
        // Producers start once every partition has a consumer (a group needs a rebalance).
        let deadline = Instant::now() + Duration::from_secs(60);
        while assigned.load(Ordering::Relaxed) < leaders.len() as i64 && !produced.stopped() {
            if Instant::now() > deadline {
                produced.stop.store(true, Ordering::Relaxed);
                consumed.stop.store(true, Ordering::Relaxed);
                let _ = consumers.join();
                return Err("consumers were not assigned every partition within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let produced_result = produce_all(produce, &produced, Some(clock));
        produced.stop.store(true, Ordering::Relaxed);
        if produced_result.is_err() {
            consumed.stop.store(true, Ordering::Relaxed);
        }
        let consumed_result = consumers
            .join()
            .unwrap_or_else(|_| Err("a consumer thread panicked".into()));
        drop(progress);
        produced_result?;
        consumed_result?;
        super::e2e::outcome(produce, "rdkafka", &consumed, &produced)
    }
}

/// Deliveries between merges of a producer's tally into the run.
const TALLY_EVERY: u64 = 1024;

/// A producer's delivery reports, counted into the run in chunks.
struct Deliveries {
    run: Arc<Run>,
    anchor: Instant,
    message_bytes: u64,
    tally: Mutex<(u64, Histogram<u64>)>,
}

impl Deliveries {
    fn flush(&self) {
        let mut tally = self.tally.lock().expect("tally");
        let (messages, histogram) = &mut *tally;
        self.run.count(*messages, *messages * self.message_bytes);
        *messages = 0;
        self.run.merge(histogram);
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    /// Microseconds from `anchor` to the send.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_us: usize) {
        match result {
            Ok(_) => {
                // One clock read per delivery: it dates the answer and decides the warm-up.
                let now = Instant::now();
                if now < self.run.measure_from {
                    // Warm-up: counted at once, so a later flush never dates it measured.
                    self.run.count(1, self.message_bytes);
                    return;
                }
                let full = {
                    let mut tally = self.tally.lock().expect("tally");
                    tally.0 += 1;
                    let now_us = now.duration_since(self.anchor).as_micros() as u64;
                    record(&mut tally.1, now_us.saturating_sub(sent_us as u64));
                    tally.0 >= TALLY_EVERY
                };
                if full {
                    self.flush();
                }
            }
            Err((error, _)) => {
                if self.run.errors() == 0 {
                    eprintln!("spindle bench: delivery failed: {error}");
                }
                self.run.error();
            }
        }
    }
}

fn producer_config(args: &ProduceArgs) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.common.brokers)
        .set("client.id", "spindle-bench")
        .set(
            "acks",
            match args.acks.code() {
                0 => "0",
                1 => "1",
                _ => "all",
            },
        )
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_bytes.to_string())
        .set("batch.num.messages", "1000000")
        .set("compression.type", args.compression.librdkafka_name())
        .set(
            "max.in.flight.requests.per.connection",
            args.in_flight.to_string(),
        )
        .set("enable.idempotence", "false")
        .set("partitioner", "murmur2_random")
        // Java's default buffer.memory (32 MiB): produce latency then compares with
        // kafka-producer-perf-test's, rather than measuring a gigabyte-deep local queue.
        .set("queue.buffering.max.kbytes", "32768")
        .set("message.timeout.ms", "60000");
    config
}

/// Messages a producer takes from the budget at a time.
const BUDGET_CHUNK: u64 = 256;

/// Runs `--producers` librdkafka producers to the end of the budget; with a `clock`, every
/// value starts with its send time (e2e).
fn produce_all(args: &ProduceArgs, run: &Arc<Run>, clock: Option<Clock>) -> Result<(), String> {
    let budget = Arc::new(Budget::new(args, run));
    let threads = (0..args.producers)
        .map(|index| {
            let (args, run, budget) = (args.clone(), run.clone(), budget.clone());
            std::thread::spawn(move || {
                let result = produce_one(&args, index as u64, &run, &budget, clock);
                if result.is_err() {
                    run.stop.store(true, Ordering::Relaxed);
                }
                result
            })
        })
        .collect();
    join_all(threads)
}

fn produce_one(
    args: &ProduceArgs,
    index: u64,
    run: &Arc<Run>,
    budget: &Budget,
    clock: Option<Clock>,
) -> Result<(), String> {
    let context = Deliveries {
        run: run.clone(),
        anchor: Instant::now(),
        message_bytes: args.message_bytes as u64,
        tally: Mutex::new((0, latency_histogram())),
    };
    let producer: BaseProducer<Deliveries> = producer_config(args)
        .create_with_context(context)
        .map_err(|e| format!("rdkafka producer: {e}"))?;
    let mut limiter = (args.throughput > 0.0)
        .then(|| RateLimiter::new(args.throughput / args.producers as f64, Instant::now()));
    let mut value = payload(args.message_bytes, 0x2545_f491_4f6c_dd1d ^ index);
    let mut key_counter = index << 40;
    let anchor = producer.context().anchor;
    let mut sent = 0u64;
    'run: loop {
        let granted = budget.take(BUDGET_CHUNK, run);
        if granted == 0 {
            break;
        }
        for _ in 0..granted {
            if let Some(limiter) = &mut limiter {
                // Wait for the next send by serving delivery reports, not by sleeping.
                // rust-rdkafka's poll(ZERO) handles one event, and at a low rate with
                // linger.ms=0 each event reports a message or two: one poll per 64 sends let
                // the reports wait for the final flush, which dated every delivery at the
                // end of the run. poll(delay) serves every event that arrives meanwhile.
                let delay = limiter.delay(1, Instant::now());
                if !delay.is_zero() {
                    producer.poll(delay);
                }
            }
            if let Some(clock) = &clock {
                value[..SEND_TIME_BYTES].copy_from_slice(&clock.now_micros().to_be_bytes());
            }
            key_counter += 1;
            let key = key_counter.to_be_bytes();
            let sent_us = anchor.elapsed().as_micros() as usize;
            let mut record =
                BaseRecord::with_opaque_to(&args.common.topic, sent_us).payload(&value);
            if args.keys {
                record = record.key(&key);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(1));
                        if run.stopped() {
                            break 'run;
                        }
                    }
                    Err((error, _)) => {
                        run.error();
                        return Err(format!("rdkafka send: {error}"));
                    }
                }
            }
            sent += 1;
            if sent.is_multiple_of(64) {
                // One event at most (rust-rdkafka's poll(ZERO) handles one). Enough when not
                // paced: requests then carry many messages each, and a queue that fills
                // anyway is drained by the QueueFull wait above.
                producer.poll(Duration::ZERO);
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| format!("rdkafka flush: {e}"))?;
    producer.context().flush();
    Ok(())
}

/// Counts partitions assigned to a group member.
struct Assignments {
    assigned: Option<Arc<AtomicI64>>,
}

impl ClientContext for Assignments {}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Some(assigned) = &self.assigned {
            match rebalance {
                Rebalance::Assign(partitions) => {
                    assigned.fetch_add(partitions.count() as i64, Ordering::Relaxed);
                }
                Rebalance::Revoke(partitions) => {
                    assigned.fetch_sub(partitions.count() as i64, Ordering::Relaxed);
                }
                Rebalance::Error(_) => {}
            }
        }
    }
}

/// When consumers stop.
enum Ending {
    /// `consume`: every partition read up to its high watermark seen at start (those with
    /// data are listed), or `limit` messages (0: no limit).
    AtHighWatermarks {
        ends: Mutex<BTreeMap<i32, i64>>,
        limit: u64,
    },
    /// `e2e`: the producers finished and everything they got acknowledged was read (or
    /// the drain time ran out).
    AfterProducers {
        produced: Arc<Run>,
        assigned: Arc<AtomicI64>,
    },
}

/// Longest a consumer holds counts and latencies before merging them into the run.
const MERGE_EVERY: Duration = Duration::from_millis(100);

/// How long e2e consumers keep reading after the producers finished.
const DRAIN_MAX: Duration = Duration::from_secs(30);

fn consumer_config(brokers: &str, args: &ConsumerArgs, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "spindle-bench")
        .set("group.id", group)
        .set("enable.auto.commit", args.group.is_some().to_string())
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", args.fetch_bytes.to_string())
        .set("max.partition.fetch.bytes", args.fetch_bytes.to_string())
        .set(
            "receive.message.max.bytes",
            (args.fetch_bytes as i64 + (1 << 20))
                .min(i32::MAX as i64)
                .to_string(),
        );
    config
}

/// Commits `offsets` of `topic` for `group` (no member needed: a group with none accepts
/// commits from outside, as Kafka's tools rely on).
fn commit_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    offsets: &[(i32, Offset)],
) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("rdkafka consumer: {e}"))?;
    let mut list = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        list.add_partition_offset(topic, partition, offset)
            .map_err(|e| e.to_string())?;
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(|e| format!("committing the group's start offsets: {e}"))
}

/// Runs `--consumers` librdkafka consumers: partitions assigned round-robin at `starts`,
/// or all of them members of `--group`.
fn consume_all(
    brokers: &str,
    topic: &str,
    args: &ConsumerArgs,
    starts: Vec<(i32, Offset)>,
    ending: Ending,
    run: &Arc<Run>,
    clock: Option<Clock>,
) -> Result<(), String> {
    let generated = format!(
        "spindle-bench-{}-{}",
        std::process::id(),
        Clock::new().now_micros()
    );
    let group = args.group.clone().unwrap_or(generated);
    let ending = Arc::new(ending);
    let mut threads = Vec::new();
    for index in 0..args.consumers {
        let mine: Vec<(i32, Offset)> = starts
            .iter()
            .enumerate()
            .filter(|(i, _)| i % args.consumers == index)
            .map(|(_, &start)| start)
            .collect();
        if args.group.is_none() && mine.is_empty() {
            continue;
        }
        let assigned = match &*ending {
            Ending::AfterProducers { assigned, .. } => Some(assigned.clone()),
            Ending::AtHighWatermarks { .. } => None,
        };
        let consumer: BaseConsumer<Assignments> = consumer_config(brokers, args, &group)
            .create_with_context(Assignments {
                assigned: args.group.is_some().then_some(assigned.clone()).flatten(),
            })
            .map_err(|e| format!("rdkafka consumer: {e}"))?;
        if args.group.is_some() {
            consumer
                .subscribe(&[topic])
                .map_err(|e| format!("subscribe: {e}"))?;
        } else {
            let mut list = TopicPartitionList::new();
            for &(partition, offset) in &mine {
                list.add_partition_offset(topic, partition, offset)
                    .map_err(|e| e.to_string())?;
            }
            consumer.assign(&list).map_err(|e| format!("assign: {e}"))?;
            if let Some(assigned) = &assigned {
                assigned.fetch_add(mine.len() as i64, Ordering::Relaxed);
            }
        }
        let (run, ending) = (run.clone(), ending.clone());
        threads.push(std::thread::spawn(move || {
            let result = consume_one(&consumer, &run, &ending, clock);
            if result.is_err() {
                run.stop.store(true, Ordering::Relaxed);
            }
            result
        }));
    }
    join_all(threads)
}

fn consume_one(
    consumer: &BaseConsumer<Assignments>,
    run: &Run,
    ending: &Ending,
    clock: Option<Clock>,
) -> Result<(), String> {
    let mut local = latency_histogram();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut drain_deadline = None;
    let mut last_merge = Instant::now();
    let result = loop {
        if run.stopped() {
            break Ok(());
        }
        match ending {
            Ending::AtHighWatermarks { ends, limit } => {
                if ends.lock().expect("ends").is_empty()
                    || (*limit > 0 && run.total() + messages >= *limit)
                {
                    break Ok(());
                }
            }
            Ending::AfterProducers { produced, .. } => {
                if produced.stopped() {
                    let deadline = *drain_deadline.get_or_insert(Instant::now() + DRAIN_MAX);
                    if run.total() + messages >= produced.total() || Instant::now() > deadline {
                        break Ok(());
                    }
                }
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Ending::AtHighWatermarks { ends, .. } = ending {
                    ends.lock().expect("ends").remove(&partition);
                }
            }
            Some(Err(error)) => {
                run.error();
                break Err(format!("rdkafka consume: {error}"));
            }
            Some(Ok(message)) => {
                messages += 1;
                let value = message.payload().unwrap_or_default();
                bytes += (value.len() + message.key().map_or(0, <[u8]>::len)) as u64;
                match ending {
                    Ending::AtHighWatermarks { ends, .. } => {
                        let mut ends = ends.lock().expect("ends");
                        if ends
                            .get(&message.partition())
                            .is_some_and(|&end| message.offset() + 1 >= end)
                        {
                            ends.remove(&message.partition());
                        }
                    }
                    Ending::AfterProducers { .. } => {
                        if let (Some(clock), true) = (&clock, run.measuring()) {
                            let sent = send_time(value).ok_or("a message without its send time")?;
                            record(&mut local, clock.now_micros().saturating_sub(sent));
                        }
                    }
                }
            }
        }
        // The first message is counted at once: it starts the consume clock.
        if messages >= TALLY_EVERY
            || (messages > 0 && (run.total() == 0 || last_merge.elapsed() > MERGE_EVERY))
        {
            run.count(messages, bytes);
            run.merge(&mut local);
            (messages, bytes) = (0, 0);
            last_merge = Instant::now();
        }
    };
    run.count(messages, bytes);
    run.merge(&mut local);
    result
}
