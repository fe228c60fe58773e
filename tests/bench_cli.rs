//! `spindle bench produce` and `consume` against a test broker: the JSON summaries parse,
//! the messages produce reports acknowledged are exactly what the topic's high watermarks
//! add up to, and consume reads exactly that many back.

mod common;

use std::process::Command;

use common::{Broker, RawClient, temp_dir};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

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
