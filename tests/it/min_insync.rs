//! `--min-insync-replicas` (issue 13): the broker's default for the topic config
//! `min.insync.replicas`, which a topic may override. Kafka refuses acks=all with
//! NOT_ENOUGH_REPLICAS while fewer replicas are in sync, even for one replica.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, temp_dir};

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

pub(crate) fn produce(client: &mut RawClient, topic: &str, acks: i16) -> i16 {
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, b"value")];
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(build_batch(1_700_000_000_000, &records)))),
                ]),
        ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}

#[test]
fn the_broker_default_guards_acks_all_and_a_topic_may_override_it() {
    let dir = temp_dir("min-insync");
    let broker = Broker::start(dir.path(), &["--cores", "1", "--min-insync-replicas", "2"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    let topic = |topic: &str, configs: Vec<CreatableTopicConfig>| {
        CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)
    };
    let response: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            topic("guarded", vec![]),
            topic(
                "relaxed",
                vec![
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_static_str("min.insync.replicas"))
                        .with_value(Some(StrBytes::from_static_str("1"))),
                ],
            ),
        ]),
    );
    assert!(
        response.topics.iter().all(|t| t.error_code == 0),
        "{response:?}"
    );

    let described: DescribeConfigsResponse = client.call(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("guarded")),
        ]),
    );
    let value = described.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "min.insync.replicas")
        .and_then(|c| c.value.as_ref().map(|v| v.to_string()));
    assert_eq!(
        value.as_deref(),
        Some("2"),
        "the broker default is described: {described:?}"
    );

    // One replica is fewer than two: acks=all is refused, acks=1 is not.
    assert_eq!(
        produce(&mut client, "guarded", -1),
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert_eq!(produce(&mut client, "guarded", 1), 0);
    assert_eq!(
        produce(&mut client, "relaxed", -1),
        0,
        "the topic's own setting"
    );
}
