//! Idempotent producers end to end with librdkafka: the broker (by a test-only flag) closes
//! the connection instead of answering every Nth produce request after appending it, so
//! the client retries batches the log already holds. With `enable.idempotence=true` the log
//! holds every message exactly once and in order; the same faults make a non-idempotent
//! producer write duplicates (the control that shows the faults bite).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::common::{Broker, temp_dir};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for result in futures_lite::future::block_on(admin.create_topics(
        &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .unwrap()
    {
        result.expect("created");
    }
}

fn produce(bootstrap: &str, topic: &str, count: usize, idempotent: bool) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "100")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "50")
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer");
    for i in 0..count {
        crate::common::send_retrying(&producer, topic, &format!("k{}", i % 40), &i.to_string());
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every message delivered");
}

/// Every message of `topic`: `(partition, key, value)` in log order per partition.
fn consume_all(bootstrap: &str, topic: &str) -> Vec<(i32, String, usize)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let mut at_end = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end < PARTITIONS && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(error)) => panic!("consume: {error}"),
            Some(Ok(message)) => {
                let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                out.push((
                    message.partition(),
                    text(message.key()),
                    text(message.payload()).parse().unwrap(),
                ));
            }
        }
    }
    assert_eq!(at_end, PARTITIONS, "reached the end of every partition");
    out
}

#[test]
fn idempotent_producer_writes_each_message_once_despite_lost_responses() {
    let dir = temp_dir("idempotence");
    let broker = Broker::start(dir.path(), &["--fault-drop-produce-response-every", "25"]);

    // Control: without idempotence the dropped responses turn into duplicates.
    create_topic(&broker.bootstrap, "control");
    produce(&broker.bootstrap, "control", 20_000, false);
    let control = consume_all(&broker.bootstrap, "control");
    assert!(
        control.len() > 20_000,
        "the faults must force retries of appended batches (read {})",
        control.len()
    );

    create_topic(&broker.bootstrap, "exactly-once");
    produce(&broker.bootstrap, "exactly-once", 100_000, true);
    let read = consume_all(&broker.bootstrap, "exactly-once");
    let mut copies: HashMap<usize, usize> = HashMap::new();
    for (_, _, value) in &read {
        *copies.entry(*value).or_default() += 1;
    }
    let duplicated: Vec<_> = copies.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicated.is_empty(), "duplicates: {duplicated:?}");
    assert_eq!(copies.len(), 100_000, "every message once");
    // In order: per key (one partition each), values grow.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, key, value) in &read {
        if let Some(previous) = last.insert(key, *value) {
            assert!(previous < *value, "{key}: {previous} then {value}");
        }
    }
}
