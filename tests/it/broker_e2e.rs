//! End to end with librdkafka (the `rdkafka` crate): a real client creates a topic, produces
//! keyed messages with acks=all and acks=1, consumes them back, and finds every message
//! exactly once, in order per partition, with each key always in the same partition; after
//! a restart it reads the same log again; ListOffsets by timestamp starts it mid-log; and a
//! SIGKILL at an arbitrary moment loses no message whose ack was sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Broker, temp_dir};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// One delivered (acknowledged) message: `(partition, offset, key, value)`.
type Delivered = (i32, i64, String, String);

#[derive(Clone, Default)]
struct Deliveries {
    acked: Arc<Mutex<Vec<Delivered>>>,
    failed: Arc<Mutex<usize>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let text =
                    |bytes: Option<&[u8]>| String::from_utf8(bytes.unwrap().to_vec()).unwrap();
                self.acked.lock().unwrap().push((
                    message.partition(),
                    message.offset(),
                    text(message.key()),
                    text(message.payload()),
                ));
            }
            Err(_) => *self.failed.lock().unwrap() += 1,
        }
    }
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let results = futures_lite::future::block_on(admin(bootstrap).create_topics(
        &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

fn producer(bootstrap: &str, acks: &str, deliveries: &Deliveries) -> ThreadedProducer<Deliveries> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create_with_context(deliveries.clone())
        .expect("producer")
}

/// Sends `values` keyed by `key_of`, retrying while librdkafka's queue is full.
fn send_all(
    producer: &ThreadedProducer<Deliveries>,
    topic: &str,
    values: impl Iterator<Item = (String, String)>,
) {
    for (key, value) in values {
        crate::common::send_retrying(producer, topic, &key, &value);
    }
}

/// Reads every partition of `topic` from `start` until `expected` messages arrived (or 60 s
/// passed): `(partition, offset, key, value, timestamp)` in arrival order.
fn consume(
    bootstrap: &str,
    topic: &str,
    starts: &[(i32, Offset)],
    expected: usize,
) -> Vec<(i32, i64, String, String, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "spindle-e2e-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for (partition, offset) in starts {
        assignment
            .add_partition_offset(topic, *partition, *offset)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(error)) => panic!("consume: {error}"),
            Some(Ok(message)) => {
                let text =
                    |bytes: Option<&[u8]>| String::from_utf8(bytes.unwrap().to_vec()).unwrap();
                out.push((
                    message.partition(),
                    message.offset(),
                    text(message.key()),
                    text(message.payload()),
                    message.timestamp().to_millis().unwrap(),
                ));
            }
        }
    }
    // Nothing beyond what was expected turns up.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            panic!(
                "unexpected extra message at {}:{}",
                message.partition(),
                message.offset()
            );
        }
    }
    out
}

const PARTITIONS: i32 = 8;
const MESSAGES_PER_ACKS: usize = 100_000;
const KEYS: usize = 1_000;

#[test]
fn keyed_messages_round_trip_in_order_across_a_restart() {
    let dir = temp_dir("e2e");
    let broker = Broker::start(dir.path(), &[]);
    create_topic(&broker.bootstrap, "orders", PARTITIONS);

    let deliveries = Deliveries::default();
    for (round, acks) in ["all", "1"].into_iter().enumerate() {
        let producer = producer(&broker.bootstrap, acks, &deliveries);
        let first = round * MESSAGES_PER_ACKS;
        send_all(
            &producer,
            "orders",
            (first..first + MESSAGES_PER_ACKS)
                .map(|i| (format!("key-{}", i % KEYS), i.to_string())),
        );
        producer.flush(Duration::from_secs(60)).expect("flush");
    }
    let total = 2 * MESSAGES_PER_ACKS;
    assert_eq!(*deliveries.failed.lock().unwrap(), 0);
    let acked = deliveries.acked.lock().unwrap().clone();
    assert_eq!(acked.len(), total);

    // Each key always went to one partition.
    let mut partition_of_key: HashMap<&str, i32> = HashMap::new();
    for (partition, _, key, _) in &acked {
        let first = *partition_of_key.entry(key).or_insert(*partition);
        assert_eq!(first, *partition, "{key} moved between partitions");
    }
    assert!(partition_of_key.values().collect::<HashSet<_>>().len() > 1);

    let starts: Vec<(i32, Offset)> = (0..PARTITIONS).map(|p| (p, Offset::Beginning)).collect();
    let consumed = consume(&broker.bootstrap, "orders", &starts, total);
    check_log(&consumed, &acked, total);

    // Restart (clean shutdown) and read the same log again.
    assert!(broker.stop().success());
    let broker = Broker::start(dir.path(), &[]);
    let again = consume(&broker.bootstrap, "orders", &starts, total);
    let sorted = |mut v: Vec<(i32, i64, String, String, i64)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(again), sorted(consumed.clone()));

    // ListOffsets by timestamp: start partition 0 at the first record at or after the
    // timestamp of its middle record.
    let partition0: Vec<&(i32, i64, String, String, i64)> =
        consumed.iter().filter(|m| m.0 == 0).collect();
    let middle = partition0[partition0.len() / 2];
    let expected = partition0
        .iter()
        .find(|m| m.4 >= middle.4)
        .expect("the middle record qualifies");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "spindle-e2e-unused")
        .create()
        .unwrap();
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset("orders", 0, Offset::Offset(middle.4))
        .unwrap();
    let found = consumer
        .offsets_for_times(wanted, Duration::from_secs(10))
        .expect("offsets_for_times");
    let offset = found.find_partition("orders", 0).unwrap().offset();
    assert_eq!(offset, Offset::Offset(expected.1));
    let from_middle = consume(
        &broker.bootstrap,
        "orders",
        &[(0, offset)],
        partition0.len() - expected.1 as usize,
    );
    assert_eq!(from_middle.first().map(|m| m.1), Some(expected.1));
    assert_eq!(
        from_middle.last().map(|m| m.1),
        partition0.last().map(|m| m.1)
    );
}

/// Every acked message is consumed exactly once, at its acked offset; offsets are dense
/// from 0 per partition; per key, values arrive in the order they were sent.
fn check_log(consumed: &[(i32, i64, String, String, i64)], acked: &[Delivered], total: usize) {
    assert_eq!(consumed.len(), total, "every message consumed");
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_value_of_key: HashMap<&str, usize> = HashMap::new();
    for (partition, offset, key, value, _) in consumed {
        let next = next_offset.entry(*partition).or_insert(0);
        assert_eq!(
            *offset, *next,
            "partition {partition}: offsets dense and in order"
        );
        *next += 1;
        let value: usize = value.parse().unwrap();
        if let Some(previous) = last_value_of_key.insert(key, value) {
            assert!(previous < value, "{key}: {previous} before {value}");
        }
    }
    let consumed_set: HashSet<(i32, i64, &str, &str)> = consumed
        .iter()
        .map(|(p, o, k, v, _)| (*p, *o, k.as_str(), v.as_str()))
        .collect();
    assert_eq!(consumed_set.len(), total, "no duplicates");
    for (partition, offset, key, value) in acked {
        assert!(
            consumed_set.contains(&(*partition, *offset, key.as_str(), value.as_str())),
            "acked {partition}:{offset} {key}={value} not consumed as acked"
        );
    }
}

#[test]
fn sigkill_loses_no_acknowledged_message() {
    for acks in ["1", "all"] {
        let dir = temp_dir("sigkill");
        let broker = Broker::start(dir.path(), &[]);
        create_topic(&broker.bootstrap, "crash", 4);
        let deliveries = Deliveries::default();
        let producer = producer(&broker.bootstrap, acks, &deliveries);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    send_all(
                        &producer,
                        "crash",
                        std::iter::once((format!("k{}", i % 64), i.to_string())),
                    );
                    i += 1;
                    if i.is_multiple_of(1000) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                // Whatever is still queued fails against the dead broker.
                let _ = producer.flush(Duration::from_secs(3));
            })
        };
        // Kill once a good number of acks arrived, mid-stream.
        let deadline = Instant::now() + Duration::from_secs(60);
        while deliveries.acked.lock().unwrap().len() < 20_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        broker.kill();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sender.join().unwrap();
        let acked = deliveries.acked.lock().unwrap().clone();
        assert!(
            acked.len() >= 20_000,
            "acks={acks}: only {} acked",
            acked.len()
        );

        let broker = Broker::start(dir.path(), &[]);
        let starts: Vec<(i32, Offset)> = (0..4).map(|p| (p, Offset::Beginning)).collect();
        let high_watermarks: i64 = {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &broker.bootstrap)
                .set("group.id", "unused")
                .create()
                .unwrap();
            (0..4)
                .map(|p| {
                    consumer
                        .fetch_watermarks("crash", p, Duration::from_secs(10))
                        .unwrap()
                        .1
                })
                .sum()
        };
        let consumed = consume(
            &broker.bootstrap,
            "crash",
            &starts,
            high_watermarks as usize,
        );
        assert_eq!(consumed.len() as i64, high_watermarks);
        let stored: HashSet<(i32, i64, &str, &str)> = consumed
            .iter()
            .map(|(p, o, k, v, _)| (*p, *o, k.as_str(), v.as_str()))
            .collect();
        for (partition, offset, key, value) in &acked {
            assert!(
                stored.contains(&(*partition, *offset, key.as_str(), value.as_str())),
                "acks={acks}: acked {partition}:{offset} {key}={value} lost after SIGKILL"
            );
        }
    }
}
