//! Client quotas (issue 16): AlterClientQuotas and DescribeClientQuotas on client-id
//! entities, kept across a restart, and `producer_byte_rate` enforced per core as Kafka
//! does since KIP-219: the request past the quota is served and answered with a throttle
//! time, and the connection's next request is not read before that time has passed.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, ProduceRequest, ProduceResponse,
};
use kafka_protocol::protocol::StrBytes;
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, spindle_cli, spindle_cli_ok, temp_dir, topic_name};

/// The client id RawClient sends.
const CLIENT: &str = "spindle-test";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn entry(entity_type: &str, name: Option<&str>, ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData::default()
        .with_entity(vec![
            EntityData::default()
                .with_entity_type(s(entity_type))
                .with_entity_name(name.map(s)),
        ])
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(s(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        )
}

fn alter(client: &mut RawClient, entries: Vec<EntryData>) -> Vec<i16> {
    let response: AlterClientQuotasResponse = client.call(
        ApiKey::AlterClientQuotas,
        1,
        &AlterClientQuotasRequest::default().with_entries(entries),
    );
    response.entries.iter().map(|e| e.error_code).collect()
}

/// A described entity: its client id (`None`: the default) and its `(key, value)`s.
type Described = (Option<String>, Vec<(String, f64)>);

/// Every described entity.
fn describe(client: &mut RawClient, components: Vec<ComponentData>) -> Vec<Described> {
    let response: DescribeClientQuotasResponse = client.call(
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default().with_components(components),
    );
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| {
            assert_eq!(entry.entity.len(), 1);
            assert_eq!(entry.entity[0].entity_type.as_str(), "client-id");
            (
                entry.entity[0].entity_name.as_ref().map(|n| n.to_string()),
                entry
                    .values
                    .iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect(),
            )
        })
        .collect()
}

/// One acks=1 Produce of a batch of `bytes` to `quoted`-0: `(error code, throttle ms, how
/// long the answer took)`.
fn produce(client: &mut RawClient, bytes: usize) -> (i16, i32, Duration) {
    let value = vec![b'q'; bytes];
    let batch = Bytes::from(build_batch(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
        &[(None, &value[..])],
    ));
    let started = Instant::now();
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name("quoted"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch)),
                    ]),
            ]),
    );
    let code = response.responses[0].partition_responses[0].error_code;
    (code, response.throttle_time_ms, started.elapsed())
}

#[test]
fn client_quotas_are_kept_described_and_a_producer_past_its_rate_is_throttled() {
    let dir = temp_dir("client-quotas");
    let mut broker = Broker::start(dir.path(), &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);

    // Two valid entries and two refused ones, each answered in place.
    let codes = alter(
        &mut client,
        vec![
            entry(
                "client-id",
                Some(CLIENT),
                &[("producer_byte_rate", Some(100_000.0))],
            ),
            entry("user", Some("alice"), &[("producer_byte_rate", Some(1.0))]),
            entry("client-id", None, &[("consumer_byte_rate", Some(2e6))]),
            entry(
                "client-id",
                Some("x"),
                &[("request_percentage", Some(50.0))],
            ),
        ],
    );
    assert_eq!(
        codes,
        vec![0, 42, 0, 42],
        "INVALID_REQUEST for user and an unknown key"
    );
    let all = vec![
        (None, vec![("consumer_byte_rate".to_string(), 2e6)]),
        (
            Some(CLIENT.to_string()),
            vec![("producer_byte_rate".to_string(), 100_000.0)],
        ),
    ];
    assert_eq!(describe(&mut client, vec![]), all);
    let exact = ComponentData::default()
        .with_entity_type(s("client-id"))
        .with_match_type(0)
        .with_match(Some(s(CLIENT)));
    assert_eq!(
        describe(&mut client, vec![exact.clone()]),
        all[1..].to_vec()
    );

    // Kept across a restart (the metadata file).
    drop(client);
    assert!(broker.stop().success());
    broker = Broker::start(dir.path(), &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    assert_eq!(describe(&mut client, vec![]), all);

    // 100 kB/s over Kafka's 10 s window: the first 1 MB passes unthrottled, then a
    // throttle comes back, growing with the excess, and the next request waits it out.
    spindle_cli_ok(&broker.bootstrap, &["topic", "create", "quoted", "-p", "1"]);
    let mut first_throttled = None;
    let mut throttle_ms = 0;
    for sent in 1..=12 {
        let (code, throttle, _) = produce(&mut client, 200_000);
        assert_eq!(code, 0, "request {sent}");
        if throttle > 0 && first_throttled.is_none() {
            first_throttled = Some(sent);
        }
        if throttle >= 500 {
            throttle_ms = throttle;
            break;
        }
    }
    let first = first_throttled.expect("a throttle within 2.4 MB at 100 kB/s");
    assert!(
        first >= 5,
        "throttled after only {first} requests of 200 kB"
    );
    assert!((500..=11_000).contains(&throttle_ms), "{throttle_ms} ms");
    let (_, _, took) = produce(&mut client, 100);
    assert!(
        took >= Duration::from_millis(throttle_ms as u64 * 9 / 10),
        "the next request was read after {took:?}, before the {throttle_ms} ms throttle"
    );
    // The metrics endpoint counts the throttled requests and the time given.
    let metrics = crate::metrics::scrape(&broker.metrics);
    let throttled = crate::metrics::sample(
        &metrics,
        "spindle_quota_throttled_requests_total{core=\"0\"}",
    );
    assert!(throttled.is_some_and(|n| n >= 2.0), "{throttled:?}");
    let seconds =
        crate::metrics::sample(&metrics, "spindle_quota_throttle_seconds_total{core=\"0\"}");
    assert!(
        seconds.is_some_and(|s| s >= throttle_ms as f64 / 1000.0),
        "{seconds:?} after a {throttle_ms} ms throttle"
    );

    // Removed: the same client is no longer throttled.
    let codes = alter(
        &mut client,
        vec![entry(
            "client-id",
            Some(CLIENT),
            &[("producer_byte_rate", None)],
        )],
    );
    assert_eq!(codes, vec![0]);
    assert_eq!(describe(&mut client, vec![exact]), vec![]);
    for _ in 0..6 {
        let (code, throttle_ms, _) = produce(&mut client, 200_000);
        assert_eq!((code, throttle_ms), (0, 0));
    }
    drop(client);
    broker.stop();
}

/// `spindle cluster quotas ...` against `brokers`: (exit code, stdout, stderr).
fn quotas_cli(brokers: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["cluster", "quotas"];
    all.extend_from_slice(args);
    spindle_cli(brokers, &all)
}

#[test]
fn client_quotas_are_set_and_described_from_the_command_line() {
    let dir = temp_dir("client-quotas-cli");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let brokers = broker.bootstrap.as_str();
    let alter = |args: &[&str]| {
        let mut all = vec!["alter"];
        all.extend_from_slice(args);
        quotas_cli(brokers, &all)
    };
    let (code, stdout, _) = alter(&[
        "--name",
        "client-id=app",
        "--add",
        "producer_byte_rate=2048",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout, "ENTITY         RESULT\nclient-id=app  OK\n");
    let (code, _, _) = alter(&["--default", "client-id", "--add", "consumer_byte_rate=4096"]);
    assert_eq!(code, 0);
    // --dry checks without changing.
    let (code, _, _) = alter(&[
        "--name",
        "client-id=dry",
        "--add",
        "producer_byte_rate=1",
        "--dry",
    ]);
    assert_eq!(code, 0);

    let (code, stdout, _) = quotas_cli(brokers, &["describe"]);
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "ENTITY               KEY                 VALUE\n\
         client-id=<default>  consumer_byte_rate  4096\n\
         client-id=app        producer_byte_rate  2048\n"
    );
    let (code, stdout, _) = quotas_cli(
        brokers,
        &["describe", "--name", "client-id=app", "--format", "json"],
    );
    assert_eq!(code, 0);
    let described: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        described,
        serde_json::json!([{"entity": "client-id=app", "values": {"producer_byte_rate": 2048.0}}])
    );

    // A refused change fails the command with the broker's reason.
    let (code, stdout, _) = alter(&["--name", "user=alice", "--add", "producer_byte_rate=1"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("InvalidRequest"), "{stdout}");
    // Bad arguments: one line, exit 2.
    for args in [
        &["--name", "client-id=app"][..],
        &["--add", "producer_byte_rate=1"][..],
        &[
            "--name",
            "client-id=app",
            "--add",
            "producer_byte_rate=fast",
        ][..],
    ] {
        let (code, _, stderr) = alter(args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let (code, _, _) = alter(&["--name", "client-id=app", "--delete", "producer_byte_rate"]);
    assert_eq!(code, 0);
    let (_, stdout, _) = quotas_cli(brokers, &["describe", "--any", "client-id"]);
    assert_eq!(stdout, "ENTITY  KEY  VALUE\n", "no named entity left");
    broker.stop();
}
