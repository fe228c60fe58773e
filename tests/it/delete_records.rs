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
    delete_before_within(client, version, topic, offset, 10_000)
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

/// With replicas, DeleteRecords answers once every replica on a live node has raised its
/// log start (Kafka's low watermark), and with REQUEST_TIMED_OUT while a silent follower
/// has not; it answers once that follower is back.
#[test]
fn delete_records_waits_for_the_followers_log_start() {
    use crate::cluster::{Cluster, create_assigned_topic, metadata, produce_values, wait_for};

    const TOPIC: &str = "trimmed";
    let root = temp_dir("delete-records-replicated");
    let mut cluster = Cluster::new(root.path(), 3);
    // Node 2 is paused below and must not be fenced meanwhile.
    cluster.session_timeout_ms = Some(40_000);
    let nodes = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    create_assigned_topic(&address(0), TOPIC, &[&[0, 1000, 2000]], &[]);
    let all = format!("{},{},{}", address(0), address(1), address(2));
    let values: Vec<String> = (0..30).map(|i| format!("record-{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    produce_values(&all, TOPIC, "all", &values);

    let mut leader = RawClient::connect(&address(0));
    assert_eq!(delete_before(&mut leader, 2, TOPIC, 10), (0, 10));

    // A follower that is silent but not fenced holds the low watermark back.
    nodes[2].signal(libc::SIGSTOP);
    let (code, low_watermark) = delete_before_within(&mut leader, 2, TOPIC, 20, 1_500);
    assert_eq!(code, 7, "REQUEST_TIMED_OUT");
    assert!((10..20).contains(&low_watermark), "{low_watermark}");
    nodes[2].signal(libc::SIGCONT);
    assert_eq!(
        delete_before_within(&mut leader, 2, TOPIC, 20, 20_000),
        (0, 20),
        "once it reports its new start"
    );
}

/// [`delete_before`] with a timeout.
fn delete_before_within(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    offset: i64,
    timeout_ms: i32,
) -> (i16, i64) {
    let response: DeleteRecordsResponse = client.call(
        ApiKey::DeleteRecords,
        version,
        &DeleteRecordsRequest::default()
            .with_timeout_ms(timeout_ms)
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

/// A replica that was down while the leader's log start passed everything it holds: back,
/// it finds none of its next offsets at the leader, drops what it held, copies from the
/// leader's log start and joins the in-sync set again (Kafka's follower truncates fully and
/// starts at the leader's log start). Before, it asked for its own next offset forever.
#[test]
fn a_replica_left_behind_the_leaders_log_start_catches_up_from_it() {
    use crate::cluster::{
        Cluster, create_assigned_topic, metadata, partition_metadata, produce_values, wait_for,
    };

    const TOPIC: &str = "outrun";
    let root = temp_dir("delete-records-outrun");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = ["--replica-lag-time-max-ms", "1000"]
        .map(String::from)
        .to_vec();
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let address = |nodes: &[Option<Broker>], node: usize| -> String {
        nodes[node].as_ref().expect("running").bootstrap.clone()
    };
    let isr = |nodes: &[Option<Broker>]| -> Option<Vec<i32>> {
        let partition = partition_metadata(&address(nodes, 0), TOPIC, 0)?;
        let mut isr: Vec<i32> = partition.isr_nodes.iter().map(|b| b.0).collect();
        isr.sort();
        Some(isr)
    };
    wait_for("all registered", || {
        (metadata(&address(&nodes, 0)).brokers.len() == 3).then_some(())
    });
    create_assigned_topic(&address(&nodes, 0), TOPIC, &[&[0, 1000, 2000]], &[]);
    wait_for("every replica in sync", || {
        (isr(&nodes)? == [0, 1000, 2000]).then_some(())
    });
    let live = format!("{},{}", address(&nodes, 0), address(&nodes, 1));
    let values: Vec<String> = (0..30).map(|i| format!("record-{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    produce_values(&live, TOPIC, "all", &values[..10]);

    // Node 2 goes, holding offsets 0-9; the leader's log start moves past all of them.
    nodes[2].take().expect("running").kill();
    wait_for("node 2 out of the in-sync set", || {
        (isr(&nodes)? == [0, 1000]).then_some(())
    });
    produce_values(&live, TOPIC, "all", &values[10..]);
    let mut leader = RawClient::connect(&address(&nodes, 0));
    assert_eq!(delete_before(&mut leader, 2, TOPIC, 25), (0, 25));

    nodes[2] = Some(cluster.spawn(2).listening());
    wait_for("node 2 in sync again", || {
        (isr(&nodes)? == [0, 1000, 2000]).then_some(())
    });
    // Its log starts where the leader's does: a further delete is answered in full, which
    // needs every live replica to report the new start.
    assert_eq!(
        delete_before_within(&mut leader, 2, TOPIC, 27, 20_000),
        (0, 27)
    );
}
