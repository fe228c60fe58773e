//! AlterConfigs and IncrementalAlterConfigs on topics (issue 16): a change is validated as
//! Kafka validates it, survives a restart, and reaches the partition's open log at once
//! (segments roll at the new size, retention deletes by the new time) with no reopening.

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

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// IncrementalAlterConfigs v`version` of one resource: its error code.
fn incremental(
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
    let response: DescribeConfigsResponse = client.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(name))
                .with_configuration_keys(Some(vec![s(key)])),
        ]),
    );
    let entry = &response.results[0].configs[0];
    (
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        entry.config_source == 1,
    )
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
    let value = vec![b'v'; 1500];
    // Stamped now: under the default retention.ms (7 days) an older timestamp would let
    // the retention check delete the sealed segments before the config below asks it to.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for _ in 0..30 {
        let batch = Bytes::from(build_batch(now_ms, &[(None, &value[..])]));
        assert_eq!(produce_records(&mut client, "live", 0, batch, -1).0, 0);
    }
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, earliest) = list_offset(&mut client, "live", 0, -2);
        assert_eq!(code, 0);
        if earliest > 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never used the new config: earliest {earliest}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

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
            &[("log.retention.ms", SET, Some("1"))],
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
