//! Compacted topics end to end (issue 16) with librdkafka: a topic created with
//! `cleanup.policy=compact` refuses a record without a key (INVALID_RECORD), the broker's
//! cleaner compacts it in the background, and a consumer reading it from the start finds
//! the latest value of each key once, deleted keys gone, and every later record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{Broker, temp_dir};
use crate::metrics::{sample, scrape};

const TOPIC: &str = "compacted";

fn create_compacted_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "16384")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "0");
    let results = futures_lite::future::block_on(admin.create_topics(
        &[topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create topics");
    for result in results {
        result.expect("topic created");
    }
}

/// The answer to the last record sent: `None` until it comes.
#[derive(Clone, Default)]
struct LastAnswer(Arc<Mutex<Option<Result<(), KafkaError>>>>);

impl ClientContext for LastAnswer {}

impl ProducerContext for LastAnswer {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let answer = result
            .as_ref()
            .map(|_| ())
            .map_err(|(error, _)| error.clone());
        *self.0.lock().unwrap() = Some(answer);
    }
}

/// Sends one record and waits for its answer.
fn send(
    producer: &BaseProducer<LastAnswer>,
    key: Option<&str>,
    value: Option<&str>,
) -> Result<(), KafkaError> {
    let mut record: BaseRecord<'_, str, str> = BaseRecord::to(TOPIC).partition(0);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    *producer.context().0.lock().unwrap() = None;
    producer.send(record).map_err(|(error, _)| error)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        producer.poll(Duration::from_millis(10));
        if let Some(answer) = producer.context().0.lock().unwrap().take() {
            return answer;
        }
        assert!(Instant::now() < deadline, "no answer to a produce");
    }
}

/// Every record of the topic from its start to its end: `(offset, key, value)`.
fn read_all(bootstrap: &str) -> Vec<(i64, String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-e2e-unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, end) = consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|(offset, _, _)| offset + 1 < end) {
        assert!(
            Instant::now() < deadline,
            "read {} records, end {end}",
            out.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("a record");
        let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        out.push((
            message.offset(),
            text(message.key()).expect("keyed"),
            text(message.payload()),
        ));
    }
    out
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_of_each_key() {
    let dir = temp_dir("compaction-e2e");
    let broker = Broker::start(
        dir.path(),
        &["--cores", "1", "--log-cleaner-backoff-ms", "200"],
    );
    let bootstrap = broker.core_address(0);
    create_compacted_topic(&bootstrap);
    let producer: BaseProducer<LastAnswer> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create_with_context(LastAnswer::default())
        .expect("producer");

    // A record without a key has no place in a compacted topic.
    match send(&producer, None, Some("no key")) {
        Err(KafkaError::MessageProduction(code)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidRecord)
        }
        other => panic!("a keyless record was answered {other:?}"),
    }

    // An idempotent producer writes key-0 once, first: every record of its only batch
    // goes, and the cleaner keeps the batch empty (its sequence), which the consumer
    // below reads past.
    let idempotent: BaseProducer<LastAnswer> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create_with_context(LastAnswer::default())
        .expect("idempotent producer");
    send(
        &idempotent,
        Some("key-0"),
        Some("from the idempotent producer"),
    )
    .expect("sent");
    drop(idempotent);

    // Twenty rounds over fifty keys, tombstones for the first ten, then records with keys
    // of their own that push all of that into sealed segments.
    let padding = "x".repeat(200);
    for round in 0..20 {
        for key in 0..50 {
            let value = format!("{round}-{padding}");
            send(&producer, Some(&format!("key-{key}")), Some(&value)).expect("sent");
        }
    }
    for key in 0..10 {
        send(&producer, Some(&format!("key-{key}")), None).expect("tombstone sent");
    }
    for filler in 0..200 {
        send(&producer, Some(&format!("filler-{filler}")), Some(&padding)).expect("sent");
    }

    // The cleaner runs by itself; its counters say when it has removed all it will: the
    // idempotent producer's record, the 20 values of each deleted key and its tombstone,
    // and 19 values of each other key.
    let removable = 1.0 + 10.0 * 21.0 + 40.0 * 19.0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = scrape(&broker.metrics);
        let removed = sample(
            &body,
            "spindle_log_cleaner_removed_records_total{core=\"0\"}",
        );
        if removed.is_some_and(|removed| removed >= removable) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cleaner removed {removed:?} records"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let records = read_all(&bootstrap);
    let mut by_key: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for (_, key, value) in &records {
        by_key.entry(key.clone()).or_default().push(value.clone());
    }
    for key in 0..10 {
        assert!(
            !by_key.contains_key(&format!("key-{key}")),
            "key-{key} was deleted: {:?}",
            by_key[&format!("key-{key}")]
                .iter()
                .map(|v| v.as_ref().map(|v| v.len()))
                .collect::<Vec<_>>()
        );
    }
    for key in 10..50 {
        let values = &by_key[&format!("key-{key}")];
        assert_eq!(values.len(), 1, "key-{key} once");
        assert_eq!(values[0].as_deref(), Some(format!("19-{padding}").as_str()));
    }
    for filler in 0..200 {
        assert_eq!(by_key[&format!("filler-{filler}")].len(), 1);
    }
    assert!(
        records.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "offsets only grow"
    );
    // The offsets are the ones produced: the last filler is still at the end.
    assert_eq!(
        records.last().map(|r| r.0),
        Some(1 + 20 * 50 + 10 + 200 - 1)
    );

    // A restart serves the same compacted log.
    let data_dir = broker.data_dir.clone();
    broker.stop();
    // The idempotent producer's batch is still there, at offset 0, without its record.
    let dump = std::process::Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["dump-log", "--batches", "--dir"])
        .arg(data_dir.join(format!("{TOPIC}-0")))
        .output()
        .expect("dump-log runs");
    let dump = String::from_utf8_lossy(&dump.stdout);
    let first = dump
        .lines()
        .find(|line| line.contains("position "))
        .expect("a batch");
    assert!(
        first.contains("offsets 0..0 records 0 ") && !first.contains("producer_id -1"),
        "{first}"
    );
    let broker = Broker::start(&data_dir, &["--cores", "1"]);
    assert_eq!(read_all(&broker.core_address(0)), records);
    broker.stop();
}
