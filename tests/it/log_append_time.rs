//! `message.timestamp.type=LogAppendTime` (issue 16): the leader stamps each batch with its
//! append time, librdkafka reads the records as LogAppendTime with that time (not the
//! producer's), ListOffsets by timestamp goes by it, and turning it on is live.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::Timestamp;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{Broker, RawClient, list_offset, temp_dir};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn spindle(args: &[&str]) -> std::process::ExitStatus {
    std::process::Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("spindle runs")
}

#[test]
fn a_log_append_time_topic_takes_the_brokers_time() {
    let dir = temp_dir("log-append-time");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let brokers = broker.bootstrap.as_str();
    assert!(
        spindle(&[
            "topic",
            "create",
            "stamped",
            "-p",
            "1",
            "--brokers",
            brokers
        ])
        .success()
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let send = |value: &str| {
        producer
            .send(
                BaseRecord::<str, str>::to("stamped")
                    .partition(0)
                    .payload(value)
                    .timestamp(1_000),
            )
            .map_err(|(e, _)| e)
            .expect("queued");
        producer.flush(Duration::from_secs(10)).expect("acked");
    };
    // CreateTime (the default): the producer's timestamp stands.
    send("create-time");
    // Turned on live; the next batch takes the broker's clock.
    assert!(
        spindle(&[
            "topic",
            "alter-config",
            "stamped",
            "--set",
            "message.timestamp.type=LogAppendTime",
            "--brokers",
            brokers,
        ])
        .success()
    );
    let before = now_ms();
    send("append-time");
    let after = now_ms();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "log-append-time-unused")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("stamped", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("a record");
            seen.push(message.timestamp());
        }
    }
    assert_eq!(seen.len(), 2, "both records read");
    assert_eq!(seen[0], Timestamp::CreateTime(1_000));
    match seen[1] {
        Timestamp::LogAppendTime(ms) => {
            assert!(
                (before..=after).contains(&ms),
                "{ms} not in {before}..={after}"
            )
        }
        other => panic!("the second record's timestamp is {other:?}"),
    }
    // ListOffsets by timestamp goes by the append time: the first record at or after
    // `before` is the stamped one.
    let mut client = RawClient::connect(brokers);
    assert_eq!(list_offset(&mut client, "stamped", 0, before), (0, 1));
    // The clients close while the broker still answers them (a consumer with a group id
    // would otherwise wait out its session timeout on close).
    drop(consumer);
    drop(producer);
    broker.stop();
}
