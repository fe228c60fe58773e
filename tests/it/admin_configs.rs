//! AlterConfigs and IncrementalAlterConfigs on topics and brokers (issue 16): a change is
//! validated as Kafka validates it, survives a restart, and reaches the partition's open
//! log at once (segments roll at the new size, retention deletes by the new time) with no
//! reopening. A dynamic broker config is the default of every topic that does not set it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, CreateTopicsRequest, CreateTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_request, incremental_alter_configs_request,
};
use kafka_protocol::protocol::StrBytes;
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, list_offset, produce_records, temp_dir, topic_name};

pub(crate) const TOPIC: i8 = 2;
pub(crate) const BROKER: i8 = 4;
pub(crate) const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
/// Kafka's ConfigSource values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub(crate) const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_DEFAULT: i8 = 5;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// IncrementalAlterConfigs v`version` of one resource: its error code.
pub(crate) fn incremental(
    client: &mut RawClient,
    version: i16,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> i16 {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let configs = ops
        .iter()
        .map(|(key, op, value)| {
            AlterableConfig::default()
                .with_name(s(key))
                .with_config_operation(*op)
                .with_value(value.map(s))
        })
        .collect();
    let response: IncrementalAlterConfigsResponse = client.call(
        ApiKey::IncrementalAlterConfigs,
        version,
        &IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configs(configs),
            ])
            .with_validate_only(validate_only),
    );
    assert_eq!(response.responses[0].resource_name.as_str(), name);
    response.responses[0].error_code
}

/// AlterConfigs v`version` (the whole set of overrides) of one topic: its error code.
fn replace(client: &mut RawClient, version: i16, name: &str, configs: &[(&str, &str)]) -> i16 {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let response: AlterConfigsResponse = client.call(
        ApiKey::AlterConfigs,
        version,
        &AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(name))
                .with_configs(
                    configs
                        .iter()
                        .map(|(key, value)| {
                            AlterableConfig::default()
                                .with_name(s(key))
                                .with_value(Some(s(value)))
                        })
                        .collect(),
                ),
        ]),
    );
    response.responses[0].error_code
}

/// The topic's value of `key` and whether it is the topic's own (not the default).
fn config(client: &mut RawClient, name: &str, key: &str) -> (String, bool) {
    let (value, source, _) = describe(client, TOPIC, name, key).expect("the topic's config");
    (value, source == SOURCE_TOPIC)
}

/// A resource's value of `key` through DescribeConfigs v4: `(value, source, read_only)`,
/// `None` when the answer holds no such entry.
pub(crate) fn describe(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    key: &str,
) -> Option<(String, i8, bool)> {
    let response: DescribeConfigsResponse = client.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configuration_keys(Some(vec![s(key)])),
        ]),
    );
    assert_eq!(response.results[0].error_code, 0, "{name}");
    response.results[0].configs.first().map(|entry| {
        (
            entry
                .value
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default(),
            entry.config_source,
            entry.read_only,
        )
    })
}

#[test]
fn topic_configs_change_live_through_both_alter_apis() {
    let dir = temp_dir("admin-configs");
    let broker = Broker::start(
        dir.path(),
        &["--cores", "1", "--retention-check-interval-ms", "200"],
    );
    let mut client = RawClient::connect(&broker.bootstrap);
    let created: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name("live"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, 0);

    // Small segments, set while the log is open: the batches below roll it.
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("segment.bytes", SET, Some("4096"))],
            false
        ),
        0
    );
    assert_eq!(
        config(&mut client, "live", "segment.bytes"),
        ("4096".into(), true)
    );
    produce_now(&mut client, "live", 30);
    assert_eq!(list_offset(&mut client, "live", 0, -2), (0, 0));

    // Retention of 1 ms, again live: the sealed segments go within a retention check.
    assert_eq!(
        incremental(
            &mut client,
            0,
            TOPIC,
            "live",
            &[("retention.ms", SET, Some("1"))],
            false
        ),
        0
    );
    wait_for_log_start_past(&mut client, "live", 20);

    // Refused as Kafka refuses them, changing nothing.
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "missing",
            &[("retention.ms", SET, Some("5"))],
            false
        ),
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("retention.ms", SET, Some("-5"))],
            false
        ),
        INVALID_CONFIG
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("no.such.config", SET, Some("1"))],
            false
        ),
        INVALID_CONFIG
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("retention.ms", APPEND, Some("1"))],
            false
        ),
        INVALID_CONFIG
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("retention.ms", 9, Some("1"))],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("retention.ms", SET, None)],
            false
        ),
        INVALID_REQUEST
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            BROKER,
            "0",
            &[("num.partitions", SET, Some("3"))],
            false
        ),
        INVALID_REQUEST,
        "a start-time broker setting"
    );
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[("retention.ms", SET, Some("7"))],
            true
        ),
        0
    );
    assert_eq!(
        config(&mut client, "live", "retention.ms"),
        ("1".into(), true),
        "validate_only changes nothing"
    );

    // A list config takes APPEND; DELETE goes back to the default.
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "live",
            &[
                ("cleanup.policy", APPEND, Some("compact")),
                ("segment.bytes", DELETE, None)
            ],
            false
        ),
        0
    );
    assert_eq!(
        config(&mut client, "live", "cleanup.policy"),
        ("delete,compact".into(), true)
    );
    assert!(
        !config(&mut client, "live", "segment.bytes").1,
        "segment.bytes is the default again"
    );

    // AlterConfigs replaces the whole set: what it does not name goes back to the default.
    for version in 0..=2 {
        assert_eq!(
            replace(&mut client, version, "live", &[("retention.ms", "3600000")]),
            0
        );
    }
    assert_eq!(
        replace(&mut client, 2, "live", &[("retention.ms", "-9")]),
        INVALID_CONFIG
    );
    assert_eq!(
        config(&mut client, "live", "retention.ms"),
        ("3600000".into(), true)
    );
    assert_eq!(
        config(&mut client, "live", "cleanup.policy"),
        ("delete".into(), false)
    );

    // The overrides are metadata: a restart keeps them.
    let data_dir = broker.data_dir.clone();
    broker.stop();
    let broker = Broker::start(&data_dir, &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    assert_eq!(
        config(&mut client, "live", "retention.ms"),
        ("3600000".into(), true)
    );
    broker.stop();
}

/// Kafka's synonyms of a resource's `key` (DescribeConfigs v4 with include_synonyms):
/// `(name, value, source)`, the one in force first.
fn synonyms(
    client: &mut RawClient,
    resource_type: i8,
    name: &str,
    key: &str,
) -> Vec<(String, String, i8)> {
    let response: DescribeConfigsResponse = client.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configuration_keys(Some(vec![s(key)])),
            ]),
    );
    response.results[0].configs[0]
        .synonyms
        .iter()
        .map(|synonym| {
            (
                synonym.name.to_string(),
                synonym
                    .value
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                synonym.source,
            )
        })
        .collect()
}

/// Waits (up to 20 s) for retention to raise `topic`-0's log start past `offset`.
fn wait_for_log_start_past(client: &mut RawClient, topic: &str, offset: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, earliest) = list_offset(client, topic, 0, -2);
        assert_eq!(code, 0);
        if earliest > offset {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "retention never used the new config on {topic}: earliest {earliest}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces `batches` batches of 1,500 B stamped now (retention by time must not take them
/// before the test asks it to).
fn produce_now(client: &mut RawClient, topic: &str, batches: usize) {
    let value = vec![b'v'; 1500];
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for _ in 0..batches {
        let batch = Bytes::from(build_batch(now_ms, &[(None, &value[..])]));
        assert_eq!(produce_records(client, topic, 0, batch, -1).0, 0);
    }
}

#[test]
fn dynamic_broker_configs_are_the_defaults_of_open_logs() {
    let dir = temp_dir("broker-configs");
    let broker = Broker::start(
        dir.path(),
        &["--cores", "1", "--retention-check-interval-ms", "200"],
    );
    let mut client = RawClient::connect(&broker.bootstrap);
    let created: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name("inherits"))
                .with_num_partitions(1)
                .with_replication_factor(1),
            CreatableTopic::default()
                .with_name(topic_name("own"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert!(created.topics.iter().all(|t| t.error_code == 0));
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "own",
            &[("retention.ms", SET, Some("3600000"))],
            false
        ),
        0
    );

    // Cluster-wide small segments, while both logs are open: both roll from now on.
    assert_eq!(
        incremental(
            &mut client,
            1,
            BROKER,
            "",
            &[("log.segment.bytes", SET, Some("4096"))],
            false
        ),
        0
    );
    assert_eq!(
        describe(&mut client, TOPIC, "inherits", "segment.bytes"),
        Some(("4096".into(), SOURCE_DYNAMIC_DEFAULT_BROKER, false))
    );
    produce_now(&mut client, "inherits", 30);
    produce_now(&mut client, "own", 30);

    // Retention of 1 ms for every topic that sets none: the sealed segments of "inherits"
    // go; "own" keeps its hour.
    assert_eq!(
        incremental(
            &mut client,
            0,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("1"))],
            false
        ),
        0
    );
    wait_for_log_start_past(&mut client, "inherits", 20);
    // Several more retention passes: the topic's own setting still wins.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(list_offset(&mut client, "own", 0, -2), (0, 0));
    assert_eq!(
        config(&mut client, "own", "retention.ms"),
        ("3600000".into(), true)
    );

    // Where each value comes from, as kafka-configs --describe shows it.
    assert_eq!(
        describe(&mut client, BROKER, "", "log.retention.ms"),
        Some(("1".into(), SOURCE_DYNAMIC_DEFAULT_BROKER, false))
    );
    assert_eq!(
        describe(&mut client, BROKER, "", "log.roll.ms"),
        None,
        "the cluster-wide resource lists only what is set"
    );
    assert_eq!(
        describe(&mut client, BROKER, "0", "log.retention.ms"),
        Some(("1".into(), SOURCE_DYNAMIC_DEFAULT_BROKER, false))
    );
    assert_eq!(
        describe(&mut client, BROKER, "0", "log.roll.ms"),
        Some(("604800000".into(), SOURCE_DEFAULT, false))
    );
    let (_, _, read_only) =
        describe(&mut client, BROKER, "0", "num.partitions").expect("num.partitions");
    assert!(read_only, "a start-time setting is read-only");

    // One broker's own value beats the cluster-wide one, on that broker only.
    assert_eq!(
        incremental(
            &mut client,
            1,
            BROKER,
            "0",
            &[("log.retention.ms", SET, Some("7200000"))],
            false
        ),
        0
    );
    assert_eq!(
        describe(&mut client, BROKER, "0", "log.retention.ms"),
        Some(("7200000".into(), SOURCE_DYNAMIC_BROKER, false))
    );
    assert_eq!(
        describe(&mut client, TOPIC, "inherits", "retention.ms"),
        Some(("7200000".into(), SOURCE_DYNAMIC_BROKER, false))
    );
    // kafka-configs --describe --all shows each value's synonyms, the one in force first.
    let broker_side =
        |value: &str, source| ("log.retention.ms".to_string(), value.to_string(), source);
    assert_eq!(
        synonyms(&mut client, TOPIC, "inherits", "retention.ms"),
        vec![
            broker_side("7200000", SOURCE_DYNAMIC_BROKER),
            broker_side("1", SOURCE_DYNAMIC_DEFAULT_BROKER),
            broker_side("604800000", SOURCE_DEFAULT),
        ]
    );
    assert_eq!(
        synonyms(&mut client, TOPIC, "own", "retention.ms")[0],
        (
            "retention.ms".to_string(),
            "3600000".to_string(),
            SOURCE_TOPIC
        )
    );
    assert_eq!(
        synonyms(&mut client, BROKER, "0", "log.retention.ms").len(),
        3
    );

    // Refused as Kafka refuses them, changing nothing.
    let refused = [
        ("", "num.partitions", "3", INVALID_REQUEST),
        ("", "no.such.config", "3", INVALID_REQUEST),
        ("", "log.retention.ms", "-5", INVALID_CONFIG),
        ("", "log.cleanup.policy", "sometimes", INVALID_CONFIG),
        ("1", "log.retention.ms", "5", INVALID_REQUEST),
        ("zero", "log.retention.ms", "5", INVALID_REQUEST),
    ];
    for (name, key, value, code) in refused {
        assert_eq!(
            incremental(
                &mut client,
                1,
                BROKER,
                name,
                &[(key, SET, Some(value))],
                false
            ),
            code,
            "{name}: {key}={value}"
        );
    }
    assert_eq!(
        incremental(
            &mut client,
            1,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("99"))],
            true
        ),
        0
    );
    assert_eq!(
        describe(&mut client, BROKER, "", "log.retention.ms"),
        Some(("1".into(), SOURCE_DYNAMIC_DEFAULT_BROKER, false)),
        "validate_only changes nothing"
    );

    // Dynamic configs are metadata: a restart keeps them. DELETE goes back to the flag.
    let data_dir = broker.data_dir.clone();
    broker.stop();
    let broker = Broker::start(&data_dir, &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    assert_eq!(
        describe(&mut client, TOPIC, "inherits", "retention.ms"),
        Some(("7200000".into(), SOURCE_DYNAMIC_BROKER, false))
    );
    assert_eq!(
        describe(&mut client, TOPIC, "inherits", "segment.bytes"),
        Some(("4096".into(), SOURCE_DYNAMIC_DEFAULT_BROKER, false))
    );
    for (name, key) in [
        ("0", "log.retention.ms"),
        ("", "log.retention.ms"),
        ("", "log.segment.bytes"),
    ] {
        assert_eq!(
            incremental(&mut client, 1, BROKER, name, &[(key, DELETE, None)], false),
            0
        );
    }
    assert_eq!(
        describe(&mut client, TOPIC, "inherits", "retention.ms"),
        Some(("604800000".into(), SOURCE_DEFAULT, false))
    );
    assert_eq!(describe(&mut client, BROKER, "", "log.segment.bytes"), None);
    broker.stop();
}
