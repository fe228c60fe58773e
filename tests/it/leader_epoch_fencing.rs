//! `current_leader_epoch` (KIP-320, issue 13): Fetch (v9+), ListOffsets (v4+) and
//! OffsetForLeaderEpoch name the leader epoch the caller's metadata gave it, and a leader
//! serves only callers that agree with it: an older epoch is FENCED_LEADER_EPOCH (74), a
//! newer one UNKNOWN_LEADER_EPOCH (75), -1 is not checked. Here on one node (epoch 0); the
//! divergence test checks a fenced caller after a failover, a follower's fetch included.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::{Broker, RawClient, temp_dir};

pub(crate) const FENCED_LEADER_EPOCH: i16 = 74;
pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = 75;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Fetch v`version` (v12 and older: by name; v13+: by `topic_id`) of `topic`-0 from
/// offset 0 naming `current_leader_epoch`, as a consumer (`replica_id` -1) or a follower
/// broker (v14 and older): the partition's error code.
pub(crate) fn fetch_error(
    client: &mut RawClient,
    (topic, topic_id): (&str, uuid::Uuid),
    version: i16,
    current_leader_epoch: i32,
    replica_id: i32,
) -> i16 {
    let (name, id) = if version < 13 {
        (topic, uuid::Uuid::nil())
    } else {
        ("", topic_id)
    };
    let mut request =
        crate::common::fetch_request(name, id, 0, 0).with_replica_id(BrokerId(replica_id));
    let partition = &mut request.topics[0].partitions[0];
    partition.current_leader_epoch = current_leader_epoch;
    partition.last_fetched_epoch = -1;
    let response: FetchResponse = client.call(ApiKey::Fetch, version, &request);
    response.responses[0].partitions[0].error_code
}

/// ListOffsets v`version` (latest) of `topic`-0 naming `current_leader_epoch`: the error code.
pub(crate) fn list_offsets_error(
    client: &mut RawClient,
    topic: &str,
    version: i16,
    current_leader_epoch: i32,
) -> i16 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(current_leader_epoch)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, version, &request);
    response.topics[0].partitions[0].error_code
}

/// OffsetForLeaderEpoch v`version`: where `leader_epoch` ends in `topic`-0, naming
/// `current_leader_epoch`: `(error code, epoch, end offset)`.
pub(crate) fn end_of_epoch(
    client: &mut RawClient,
    topic: &str,
    version: i16,
    leader_epoch: i32,
    current_leader_epoch: i32,
) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current_leader_epoch)
                        .with_leader_epoch(leader_epoch),
                ]),
        ]);
    let response: OffsetForLeaderEpochResponse =
        client.call(ApiKey::OffsetForLeaderEpoch, version, &request);
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

#[test]
fn a_caller_naming_another_leader_epoch_is_fenced_by_fetch_list_offsets_and_offset_for_leader_epoch()
 {
    let dir = temp_dir("leader-epoch-fencing");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    let response: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name("epochs"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 0);
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, b"value")];
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(name("epochs"))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(
                            spindle_protocol::record_batch::build_batch(
                                1_700_000_000_000,
                                &records,
                            ),
                        ))),
                ]),
        ]);
    let answer: ProduceResponse = client.call(ApiKey::Produce, 9, &produce);
    assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);

    // The partition leads in epoch 0, as Metadata says.
    let metadata: MetadataResponse = client.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    let topic = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "epochs"))
        .expect("the topic");
    assert_eq!(topic.partitions[0].leader_epoch, 0);
    let topic_id = topic.topic_id;

    for version in 9..=18 {
        for (current, expected) in [(-1, 0), (0, 0), (1, UNKNOWN_LEADER_EPOCH)] {
            assert_eq!(
                fetch_error(&mut client, ("epochs", topic_id), version, current, -1),
                expected,
                "Fetch v{version} naming epoch {current}"
            );
        }
    }
    for version in 4..=10 {
        for (current, expected) in [(-1, 0), (0, 0), (1, UNKNOWN_LEADER_EPOCH)] {
            assert_eq!(
                list_offsets_error(&mut client, "epochs", version, current),
                expected,
                "ListOffsets v{version} naming epoch {current}"
            );
        }
    }
    for version in 2..=4 {
        // Epoch 0 is the newest: it ends at the log end.
        assert_eq!(
            end_of_epoch(&mut client, "epochs", version, 0, 0),
            (0, 0, 1),
            "OffsetForLeaderEpoch v{version}"
        );
        assert_eq!(
            end_of_epoch(&mut client, "epochs", version, 0, 1).0,
            UNKNOWN_LEADER_EPOCH,
            "OffsetForLeaderEpoch v{version} naming epoch 1"
        );
    }
}
