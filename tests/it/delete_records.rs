//! DeleteRecords (issue 16) at the protocol level: the low watermark answered, ListOffsets
//! earliest and Fetch below it (OFFSET_OUT_OF_RANGE, with the new log start) agreeing,
//! Kafka's errors for offsets past the end and for topics it does not apply to, and the
//! start kept across a restart.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    FetchResponse, MetadataRequest, MetadataResponse, metadata_request::MetadataRequestTopic,
};
use spindle_protocol::record_batch::build_batch;

use crate::common::{
    Broker, RawClient, fetch_request, list_offset, produce_records, temp_dir, topic_name,
};

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// DeleteRecords v`version` of `topic`-0 before `offset`: `(error code, low watermark)`.
pub(crate) fn delete_before(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    offset: i64,
) -> (i16, i64) {
    let response: DeleteRecordsResponse = client.call(
        ApiKey::DeleteRecords,
        version,
        &DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(offset),
                    ]),
            ]),
    );
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.low_watermark)
}

fn topic_id(client: &mut RawClient, topic: &str) -> uuid::Uuid {
    let response: MetadataResponse = client.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ])),
    );
    response.topics[0].topic_id
}

#[test]
fn delete_records_moves_the_log_start_for_every_reader() {
    let dir = temp_dir("delete-records");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    let created: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name("trimmed"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, 0);
    for _ in 0..20 {
        let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, b"value"); 5];
        let batch = Bytes::from(build_batch(1_700_000_000_000, &records));
        assert_eq!(produce_records(&mut client, "trimmed", 0, batch, -1).0, 0);
    }
    assert_eq!(list_offset(&mut client, "trimmed", 0, -1), (0, 100));

    for version in 0..=2 {
        assert_eq!(
            delete_before(
                &mut client,
                version,
                "trimmed",
                30 + 10 * i64::from(version)
            ),
            (0, 30 + 10 * i64::from(version))
        );
    }
    assert_eq!(list_offset(&mut client, "trimmed", 0, -2), (0, 50));
    // Lower than the start: the start stays.
    assert_eq!(delete_before(&mut client, 2, "trimmed", 7), (0, 50));
    // A consumer below the start is out of range and told where the log starts now.
    let id = topic_id(&mut client, "trimmed");
    let fetched: FetchResponse =
        client.call(ApiKey::Fetch, 13, &fetch_request("trimmed", id, 0, 10));
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.error_code, OFFSET_OUT_OF_RANGE);
    assert_eq!(partition.log_start_offset, 50);
    let fetched: FetchResponse =
        client.call(ApiKey::Fetch, 13, &fetch_request("trimmed", id, 0, 50));
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);

    assert_eq!(
        delete_before(&mut client, 2, "trimmed", 101).0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        delete_before(&mut client, 2, "missing", 1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        delete_before(&mut client, 2, "__consumer_offsets", 1).0,
        INVALID_TOPIC_EXCEPTION
    );
    // Further on, then (after a restart) -1: up to the high watermark.
    assert_eq!(delete_before(&mut client, 2, "trimmed", 80), (0, 80));

    let data_dir = broker.data_dir.clone();
    broker.stop();
    let broker = Broker::start(&data_dir, &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    assert_eq!(
        list_offset(&mut client, "trimmed", 0, -2),
        (0, 80),
        "kept across a restart"
    );
    assert_eq!(delete_before(&mut client, 2, "trimmed", -1), (0, 100));
    assert_eq!(list_offset(&mut client, "trimmed", 0, -2), (0, 100));
    broker.stop();
}
