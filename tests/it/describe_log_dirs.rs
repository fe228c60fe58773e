//! DescribeLogDirs (issue 16), as `kafka-log-dirs --describe` asks: the broker's one log
//! directory, each replica this core holds with its bytes on disk, only the partitions
//! asked for when a request names them, and (v4+) the file system's usable bytes.

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, produce_records, temp_dir, topic_name};

/// DescribeLogDirs v`version` of everything (`None`) or of `topic`-0: `(partition, size)`
/// of each replica listed, and the directory's usable bytes.
fn log_dirs(
    client: &mut RawClient,
    version: i16,
    topic: Option<&str>,
) -> (Vec<(String, i32, i64)>, i64) {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
    let response: DescribeLogDirsResponse = client.call(
        ApiKey::DescribeLogDirs,
        version,
        &DescribeLogDirsRequest::default().with_topics(topic.map(|topic| {
            vec![
                DescribableLogDirTopic::default()
                    .with_topic(topic_name(topic))
                    .with_partitions(vec![0]),
            ]
        })),
    );
    assert_eq!(response.results.len(), 1, "one log directory");
    let result = &response.results[0];
    assert_eq!(result.error_code, 0);
    let replicas = result
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|p| (topic.name.to_string(), p.partition_index, p.partition_size))
        })
        .collect();
    (replicas, result.usable_bytes)
}

#[test]
fn describe_log_dirs_lists_each_replica_with_its_size() {
    let dir = temp_dir("describe-log-dirs");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let mut client = RawClient::connect(&broker.bootstrap);
    for (topic, partitions) in [("sized", 2), ("other", 1)] {
        let created: CreateTopicsResponse = client.call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic_name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
            ]),
        );
        assert_eq!(created.topics[0].error_code, 0);
    }
    let value = vec![b'x'; 10_000];
    let batch = Bytes::from(build_batch(1_700_000_000_000, &[(None, &value[..])]));
    assert_eq!(
        produce_records(&mut client, "sized", 0, batch.clone(), -1).0,
        0
    );
    for version in 1..=4 {
        let (replicas, usable) = log_dirs(&mut client, version, None);
        let names: Vec<(&str, i32)> = replicas.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
        assert_eq!(
            names,
            vec![("other", 0), ("sized", 0), ("sized", 1)],
            "v{version}"
        );
        let sized = replicas
            .iter()
            .find(|(t, p, _)| t == "sized" && *p == 0)
            .unwrap();
        assert_eq!(sized.2, batch.len() as i64, "bytes on disk of sized-0");
        if version >= 4 {
            assert!(usable > 0, "usable bytes {usable}");
        }
    }
    let (replicas, _) = log_dirs(&mut client, 4, Some("sized"));
    assert_eq!(replicas.len(), 1, "only what was asked: {replicas:?}");
    broker.stop();
}
