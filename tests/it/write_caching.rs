//! `write.caching` (Redpanda's topic config; broker defaults `--write-caching` and the
//! dynamic `write.caching.default`): acks=all is answered once the batch is written, as
//! Kafka answers it, without waiting for an fdatasync. Under `--flush never` the broker's
//! fsync counter shows whether an acks=all answer waited for one.

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use std::time::Duration;

use crate::admin_configs::{
    BROKER, SET, SOURCE_DYNAMIC_DEFAULT_BROKER, TOPIC, describe, incremental,
};
use crate::cluster::wait_for;
use crate::common::{Broker, RawClient, list_offset, temp_dir, topic_name};
use crate::metrics::{sample, scrape};
use crate::min_insync::produce;

/// fdatasyncs of the logs on core 0, once the counter (published once a second) shows at
/// least `at_least` and one more publication has passed.
fn fsyncs_settled(broker: &Broker, at_least: f64) -> f64 {
    let count = || {
        sample(
            &scrape(&broker.metrics),
            "spindle_log_fsyncs_total{core=\"0\"}",
        )
        .expect("the fsync counter")
    };
    wait_for("the fsync counter", || (count() >= at_least).then_some(()));
    std::thread::sleep(Duration::from_millis(1_500));
    count()
}

fn create(client: &mut RawClient, topic: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key.to_string()))
                .with_value(Some(StrBytes::from_string(value.to_string())))
        })
        .collect();
    let response: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name(topic))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(configs),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

#[test]
fn write_caching_answers_acks_all_once_written_without_an_fdatasync() {
    let dir = temp_dir("write-caching");
    let broker = Broker::start(dir.path(), &["--cores", "1", "--flush", "never"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    create(&mut client, "cached", &[("write.caching", "true")]);
    create(&mut client, "synced", &[]);
    assert_eq!(
        incremental(
            &mut client,
            1,
            TOPIC,
            "cached",
            &[("write.caching", SET, Some("maybe"))],
            false
        ),
        40,
        "not a boolean: INVALID_CONFIG"
    );

    for _ in 0..20 {
        assert_eq!(produce(&mut client, "cached", -1), 0);
    }
    // The control: without it, acks=all waits for an fdatasync even under `--flush never`:
    // one request, one sync. Had the 20 above waited for one each, the count would be 21.
    assert_eq!(produce(&mut client, "synced", -1), 0);
    assert_eq!(
        fsyncs_settled(&broker, 1.0),
        1.0,
        "acks=all to a write-caching topic waited for a sync"
    );

    // The cluster-wide dynamic default reaches the topic that does not set its own; a
    // topic's own `false` still wins.
    create(&mut client, "own-false", &[("write.caching", "false")]);
    assert_eq!(
        incremental(
            &mut client,
            1,
            BROKER,
            "",
            &[("write.caching.default", SET, Some("true"))],
            false
        ),
        0
    );
    wait_for("the topic inherits the default", || {
        let (value, source, _) = describe(&mut client, TOPIC, "synced", "write.caching")?;
        (value == "true" && source == SOURCE_DYNAMIC_DEFAULT_BROKER).then_some(())
    });
    for _ in 0..20 {
        assert_eq!(produce(&mut client, "synced", -1), 0);
    }
    assert_eq!(produce(&mut client, "own-false", -1), 0);
    assert_eq!(
        fsyncs_settled(&broker, 2.0),
        2.0,
        "the dynamic default did not reach the open log"
    );
    drop(client);
    broker.stop();

    // The start-time flag sets it for every topic that does not set it.
    let dir = temp_dir("write-caching-flag");
    let broker = Broker::start(
        dir.path(),
        &["--cores", "1", "--flush", "never", "--write-caching"],
    );
    let mut client = RawClient::connect(&broker.bootstrap);
    create(&mut client, "plain", &[]);
    create(&mut client, "own-false", &[("write.caching", "false")]);
    for _ in 0..20 {
        assert_eq!(produce(&mut client, "plain", -1), 0);
    }
    assert_eq!(produce(&mut client, "own-false", -1), 0);
    assert_eq!(fsyncs_settled(&broker, 1.0), 1.0);

    // What acks=all answered survives `kill -9` unsynced: the direct writes had landed.
    drop(client);
    broker.kill();
    let broker = Broker::start(dir.path(), &["--cores", "1", "--flush", "never"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    assert_eq!(list_offset(&mut client, "plain", 0, -1), (0, 20));
    broker.stop();
}
