//! `spindle bench produce`, `consume` and `e2e` against a test broker, with both engines:
//! the JSON summaries parse, the messages produce reports acknowledged are exactly what the
//! topic's high watermarks add up to, consume reads exactly that many back, e2e consumes
//! every message it produced, and what the bench writes (keys, compressed batches) reads
//! back through librdkafka as a Kafka client would see it.

use std::process::Command;

use crate::common::{Broker, RawClient, temp_dir};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use spindle_bench::keys::partition_for_key;

/// The number after `"key":` in a flat JSON line.
fn json_number(json: &str, key: &str) -> f64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).expect("terminated");
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is a number in {json}"))
}

#[test]
fn bench_produce_reports_what_the_log_holds() {
    let dir = temp_dir("bench");
    let broker = Broker::start(dir.path(), &[]);
    for acks in ["1", "all"] {
        let topic = format!("bench-acks-{acks}");
        let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args([
                "bench",
                "produce",
                "--brokers",
                &broker.bootstrap,
                "--topic",
                &topic,
            ])
            .args([
                "--partitions",
                "4",
                "--message-bytes",
                "100",
                "--messages",
                "50000",
            ])
            .args(["--batch-bytes", "16384", "--acks", acks, "--json"])
            .output()
            .expect("run spindle bench");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "bench failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json = stdout.lines().last().expect("a JSON line");
        let messages = json_number(json, "messages");
        assert_eq!(json_number(json, "errors"), 0.0);
        assert!(json_number(json, "messages_per_sec") > 0.0);
        assert!(json_number(json, "p99") >= json_number(json, "p50"));
        assert!(json_number(json, "max") >= json_number(json, "p9999"));
        // 163 messages per 16 KiB batch: whole batches up to the 50,000 asked.
        assert_eq!(messages, (50_000 / 163 * 163) as f64);

        let mut client = RawClient::connect(&broker.bootstrap);
        let metadata: MetadataResponse = client.call(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(topic.clone())))),
            ])),
        );
        let mut stored = 0i64;
        for partition in &metadata.topics[0].partitions {
            let leader = partition.leader_id.0 as usize;
            let mut owner = RawClient::connect(&broker.core_address(leader));
            let offsets: ListOffsetsResponse = owner.call(
                ApiKey::ListOffsets,
                5,
                &ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.clone())))
                            .with_partitions(vec![
                                ListOffsetsPartition::default()
                                    .with_partition_index(partition.partition_index)
                                    .with_timestamp(-1),
                            ]),
                    ]),
            );
            stored += offsets.topics[0].partitions[0].offset;
        }
        assert_eq!(stored as f64, messages, "acks={acks}: reported = stored");

        // And `bench consume` reads exactly that many back.
        let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args([
                "bench",
                "consume",
                "--brokers",
                &broker.bootstrap,
                "--topic",
                &topic,
                "--json",
            ])
            .output()
            .expect("run spindle bench consume");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "consume failed: {stdout}");
        let json = stdout.lines().last().expect("a JSON line");
        assert_eq!(
            json_number(json, "messages"),
            messages,
            "acks={acks}: consumed = stored"
        );
        assert_eq!(json_number(json, "errors"), 0.0);
    }
}

#[test]
fn bench_e2e_consumes_every_message_it_produced() {
    let dir = temp_dir("bench-e2e");
    let broker = Broker::start(dir.path(), &[]);
    let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "bench",
            "e2e",
            "--brokers",
            &broker.bootstrap,
            "--topic",
            "e2e",
        ])
        .args([
            "--partitions",
            "3",
            "--message-bytes",
            "64",
            "--messages",
            "20000",
        ])
        .args([
            "--batch-bytes",
            "640",
            "--throughput",
            "40000",
            "--acks",
            "all",
            "--json",
        ])
        .arg("--plot")
        .arg(dir.path().join("e2e.svg"))
        .output()
        .expect("run spindle bench e2e");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "e2e failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout.lines().last().expect("a JSON line");
    assert_eq!(json_number(json, "produced"), 20_000.0);
    assert_eq!(
        json_number(json, "messages"),
        20_000.0,
        "every produced message consumed"
    );
    assert_eq!(json_number(json, "errors"), 0.0);
    let p50 = json_number(json, "p50");
    assert!(p50 > 0.0 && p50 <= json_number(json, "p99"), "{json}");
    // Paced at 40,000/s: 20,000 messages take about half a second, not much less.
    assert!(json_number(json, "seconds") >= 0.45, "{json}");
    let svg = std::fs::read_to_string(dir.path().join("e2e.svg")).expect("the plot");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "an SVG plot"
    );
}

#[test]
fn paced_rdkafka_produce_dates_each_delivery_when_it_arrives() {
    // linger.ms=0 makes a request, and a delivery-report event, per message or two. The
    // engine used to serve one event per 64 sends, so the reports waited for the final
    // flush: every latency read as the time to the end of the run (a median near 1.5 s
    // here), and warm-up deliveries were counted as measured (the rate about 25% high).
    let dir = temp_dir("bench-paced");
    let broker = Broker::start(dir.path(), &[]);
    let json = bench(
        &broker,
        &[
            "produce",
            "--engine",
            "rdkafka",
            "--topic",
            "paced",
            "--partitions",
            "2",
            "--message-bytes",
            "100",
            "--throughput",
            "2000",
            "--linger-ms",
            "0",
            "--acks",
            "1",
            "--duration-secs",
            "3",
            "--warmup-secs",
            "1",
        ],
    );
    let rate = json_number(&json, "messages_per_sec");
    assert!((1600.0..=2400.0).contains(&rate), "rate {rate}: {json}");
    let p50 = json_number(&json, "p50");
    assert!(p50 < 100_000.0, "median produce latency {p50} us: {json}");
}

/// Runs `spindle bench ARGS --brokers B --json` and returns its JSON line.
fn bench(broker: &Broker, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .arg("bench")
        .args(args)
        .args(["--brokers", &broker.bootstrap, "--json"])
        .output()
        .expect("run spindle bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout.lines().last().expect("a JSON line").to_string();
    assert_eq!(json_number(&json, "errors"), 0.0, "{args:?}: {json}");
    json
}

/// Every message of `topic` (partitions `0..partitions`) read with librdkafka:
/// (partition, key, value).
fn read_all(broker: &Broker, topic: &str, partitions: i32) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "bench-cli-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).expect("assign");
    let mut at_end = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while at_end.len() < partitions as usize {
        assert!(std::time::Instant::now() < deadline, "read {topic} in time");
        match consumer.poll(std::time::Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("consuming {topic}: {error}"),
            Some(Ok(message)) => out.push((
                message.partition(),
                message.key().unwrap_or_default().to_vec(),
                message.payload().unwrap_or_default().to_vec(),
            )),
        }
    }
    out
}

#[test]
fn native_keys_and_compression_read_back_through_librdkafka() {
    let dir = temp_dir("bench-native-keys");
    let broker = Broker::start(dir.path(), &[]);
    for codec in ["none", "lz4", "zstd"] {
        let topic = format!("keyed-{codec}");
        let json = bench(
            &broker,
            &[
                "produce",
                "--topic",
                &topic,
                "--partitions",
                "5",
                "--message-bytes",
                "200",
                "--messages",
                "20000",
                "--batch-bytes",
                "20000",
                "--keys",
                "--compression",
                codec,
            ],
        );
        // 100 messages per batch: whole batches up to the 20,000 asked.
        assert_eq!(json_number(&json, "messages"), 20_000.0, "{codec}");
        let messages = read_all(&broker, &topic, 5);
        assert_eq!(messages.len(), 20_000, "{codec}: librdkafka reads them all");
        let mut used = std::collections::BTreeSet::new();
        for (partition, key, value) in &messages {
            assert_eq!(value.len(), 200, "{codec}");
            assert_eq!(key.len(), 8, "{codec}: keyed");
            assert_eq!(
                partition_for_key(key, 5),
                *partition,
                "{codec}: each key in the partition Kafka's partitioner picks"
            );
            used.insert(*partition);
        }
        assert_eq!(used.len(), 5, "{codec}: every partition written");
    }
}

#[test]
fn rdkafka_engine_produces_consumes_and_measures_e2e() {
    let dir = temp_dir("bench-rdkafka");
    let broker = Broker::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
    // 1 KiB messages in ~1 MB batches over 8 partitions: this shape once left the log's
    // flusher spinning on an expired sync deadline (both cores busy, nothing served).
    let json = bench(
        &broker,
        &[
            "produce",
            "--engine",
            "rdkafka",
            "--topic",
            "rd-1k",
            "--partitions",
            "8",
            "--message-bytes",
            "1024",
            "--messages",
            "300000",
            "--batch-bytes",
            "1000000",
        ],
    );
    assert_eq!(json_number(&json, "messages"), 300_000.0);
    let json = bench(
        &broker,
        &[
            "produce",
            "--engine",
            "rdkafka",
            "--topic",
            "rd",
            "--partitions",
            "4",
            "--message-bytes",
            "100",
            "--messages",
            "30000",
            "--keys",
            "--compression",
            "lz4",
            "--acks",
            "all",
        ],
    );
    assert_eq!(json_number(&json, "messages"), 30_000.0);
    assert!(
        json_number(&json, "p50") > 0.0,
        "delivery latency measured: {json}"
    );
    // librdkafka's murmur2_random partitioner and ours agree on every key.
    let messages = read_all(&broker, "rd", 4);
    assert_eq!(messages.len(), 30_000);
    for (partition, key, _) in &messages {
        assert_eq!(partition_for_key(key, 4), *partition);
    }
    let json = bench(
        &broker,
        &[
            "consume",
            "--engine",
            "rdkafka",
            "--topic",
            "rd",
            "--consumers",
            "3",
        ],
    );
    assert_eq!(json_number(&json, "messages"), 30_000.0);
    let json = bench(
        &broker,
        &[
            "e2e",
            "--engine",
            "rdkafka",
            "--topic",
            "rd",
            "--group",
            "bench-e2e",
            "--consumers",
            "2",
            "--message-bytes",
            "64",
            "--messages",
            "20000",
            "--throughput",
            "20000",
            "--linger-ms",
            "1",
        ],
    );
    assert_eq!(json_number(&json, "produced"), 20_000.0);
    assert_eq!(json_number(&json, "messages"), 20_000.0, "{json}");
    let p50 = json_number(&json, "p50");
    assert!(p50 > 0.0 && p50 <= json_number(&json, "p99"), "{json}");
}

#[test]
fn bad_bench_flags_get_one_line_and_exit_2() {
    for args in [
        vec!["consume", "--group", "g"],
        vec!["produce", "--compression", "gzip"],
        vec!["e2e", "--message-bytes", "4"],
        vec!["produce", "--warmup-secs", "-1"],
        vec!["produce", "--plot", "x.jpg"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
            .arg("bench")
            .args(&args)
            .args(["--brokers", "127.0.0.1:9"])
            .output()
            .expect("run spindle bench");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.trim().lines().count() <= 3 && !stderr.is_empty(),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn bars_draw_recorded_runs_as_svg_or_png() {
    let dir = temp_dir("bench-bars");
    let runs = dir.path().join("runs.tsv");
    std::fs::write(
        &runs,
        "produce\tspindle\t1\t300 30 1 2\t1\t90\n\
         produce\tkafka\t1\t200 20 1 2\t2\t500\n\
         e2e\tspindle\t1\t10000 1.0 0.4 1.2 3.0\t4\t30\n",
    )
    .unwrap();
    let bars = |out: &std::path::Path, input: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["bench", "bars"])
            .arg(input)
            .arg("--out")
            .arg(out)
            .output()
            .expect("run spindle bench bars")
    };
    let svg = dir.path().join("chart.svg");
    let output = bars(&svg, &runs);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("messages/s") && text.contains("kafka"),
        "{text}"
    );
    let png = dir.path().join("chart.png");
    let output = bars(&png, &runs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    } else {
        // A host without a sans font: the reason, on one line.
        assert!(stderr.contains("no sans font"), "{stderr}");
    }
    // A file that is not runs: one line, exit 1.
    std::fs::write(&runs, "not a runs file\n").unwrap();
    let output = bars(&svg, &runs);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr)
            .trim()
            .lines()
            .count(),
        1
    );
}
