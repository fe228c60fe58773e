//! `spindle topic consume --group` as a member of the group (issue 16): beside a librdkafka
//! consumer of the same group it gets its share of the partitions (range assignor) and
//! reads only those, commits where it stopped under its generation, and leaves, so the
//! other member takes every partition back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, produce_records, spindle_cli, temp_dir};

#[test]
fn consume_with_a_group_reads_only_its_share_beside_another_member() {
    let dir = temp_dir("consume-group");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let brokers = broker.bootstrap.clone();
    assert_eq!(
        spindle_cli(&brokers, &["topic", "create", "shared", "-p", "2"]).0,
        0
    );
    let mut client = RawClient::connect(&brokers);
    for partition in 0..2 {
        let values: Vec<String> = (0..10).map(|i| format!("p{partition}-{i}")).collect();
        let records: Vec<(Option<&[u8]>, &[u8])> =
            values.iter().map(|v| (None, v.as_bytes())).collect();
        let batch = Bytes::from(build_batch(1_700_000_000_000, &records));
        assert_eq!(
            produce_records(&mut client, "shared", partition, batch, -1),
            (0, 0)
        );
    }

    // A librdkafka member of the group, polling on its own thread so it takes part in
    // the rebalances the command line's member causes.
    let stop = Arc::new(AtomicBool::new(false));
    let assigned_counts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let other = {
        let brokers = brokers.clone();
        let stop = stop.clone();
        let assigned_counts = assigned_counts.clone();
        std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", "members")
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "300")
                .set("partition.assignment.strategy", "range")
                .create()
                .expect("consumer");
            consumer.subscribe(&["shared"]).expect("subscribe");
            while !stop.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
                let count = consumer.assignment().map_or(0, |a| a.count());
                let mut counts = assigned_counts.lock().unwrap();
                if counts.last() != Some(&count) {
                    counts.push(count);
                }
            }
            drop(consumer);
        })
    };
    // It holds both partitions before the command line joins.
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned_counts.lock().unwrap().last() != Some(&2) {
        assert!(
            Instant::now() < deadline,
            "the librdkafka member got no assignment"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, stdout, stderr) = spindle_cli(
        &brokers,
        &[
            "topic", "consume", "shared", "-g", "members", "--format", "%p %v\\n",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let partitions: std::collections::BTreeSet<&str> = stdout
        .lines()
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        partitions.len(),
        1,
        "one of the two partitions, the other member has the other: {stdout}"
    );
    assert_eq!(stdout.lines().count(), 10, "{stdout}");

    // It committed its partition under its generation, then left: the other member is
    // given both partitions again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts = assigned_counts.lock().unwrap().clone();
        if counts.ends_with(&[1, 2]) || (counts.len() >= 3 && counts.last() == Some(&2)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "assignments of the librdkafka member: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    other.join().unwrap();
    let (code, stdout, _) = spindle_cli(
        &brokers,
        &["group", "describe", "members", "--format", "json"],
    );
    assert_eq!(code, 0);
    let group: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let committed: Vec<(i64, i64)> = group["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|o| {
            (
                o["partition"].as_i64().unwrap(),
                o["committed_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(committed.len(), 1, "only its own partition: {committed:?}");
    assert_eq!(committed[0].1, 10);
    broker.stop();
}
