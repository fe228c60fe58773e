//! A full disk, on a real one: a small ext4 file system on a loop device that the test
//! makes (root only; `.ci/run` runs as root). While the disk is full, writes fail with
//! KAFKA_STORAGE_ERROR but everything already stored stays readable, a topic can still be
//! deleted (which frees space), the log does not fill with one line per failed request,
//! and appends resume by themselves once there is room again.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Broker, RawClient, temp_dir};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use spindle_protocol::record_batch::build_batch;

/// A loop-mounted ext4 file system, unmounted and detached when dropped.
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    fn new(dir: &Path, megabytes: u64) -> SmallDisk {
        let image = dir.join("disk.img");
        let mount_point = dir.join("mnt");
        std::fs::create_dir_all(&mount_point).unwrap();
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(megabytes << 20).unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount_point.to_str().unwrap(),
            ],
        );
        SmallDisk { mount_point }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (this test needs root and loop devices)"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}\n(this test needs root and loop devices)",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn produce(client: &mut RawClient, topic: &str, records: Bytes) -> (i16, i64) {
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]),
    );
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

fn fetch_first(client: &mut RawClient, topic: &str) -> (i16, usize) {
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    );
    let partition = &response.responses[0].partitions[0];
    (
        partition.error_code,
        partition.records.as_ref().map_or(0, Bytes::len),
    )
}

#[test]
fn a_full_disk_stops_writes_only_and_they_resume_when_space_returns() {
    let temp = temp_dir("disk-full");
    let disk = SmallDisk::new(temp.path(), 96);
    let data = disk.mount_point.join("data");
    let mut broker = Broker::start_with_stderr(
        &data,
        &[
            "--auto-create-topics",
            "false",
            "--segment-bytes",
            "4194304",
            "--flush",
            "always",
        ],
        Stdio::piped(),
    );
    let stderr = broker.take_stderr().unwrap();
    let log_lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr).lines().count()
    });
    let mut admin = RawClient::connect(&broker.bootstrap);
    for topic in ["ballast", "keep"] {
        let response: CreateTopicsResponse = admin.call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]),
        );
        assert_eq!(response.topics[0].error_code, 0);
    }
    let metadata: MetadataResponse = admin.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(
            ["ballast", "keep"]
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        )),
    );
    let leader = |topic: &str| -> usize {
        metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
            .unwrap()
            .partitions[0]
            .leader_id
            .0 as usize
    };
    let mut ballast = RawClient::connect(&broker.core_address(leader("ballast")));
    let mut keep = RawClient::connect(&broker.core_address(leader("keep")));
    let value = vec![b'x'; 64 << 10];
    let big = Bytes::from(build_batch(1_000, &[(None, &value[..]); 8]));
    let small = Bytes::from(build_batch(1_000, &[(None, &b"kept"[..])]));
    assert_eq!(produce(&mut keep, "keep", small.clone()).0, 0);
    // Fill the disk through "ballast" until writes fail.
    let started = Instant::now();
    let full = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the disk never filled"
        );
        let (code, _) = produce(&mut ballast, "ballast", big.clone());
        if code != 0 {
            break code;
        }
    };
    assert_eq!(full, 56, "KAFKA_STORAGE_ERROR once the disk is full");
    // Failures repeat for every request, but stored data stays readable.
    for _ in 0..200 {
        assert_eq!(produce(&mut ballast, "ballast", big.clone()).0, 56);
        let (code, bytes) = fetch_first(&mut ballast, "ballast");
        assert_eq!(code, 0, "reads of stored data go on while writes fail");
        assert!(bytes > 0);
    }
    // The other topic's writes fail too once its reserved blocks are used up.
    let started = Instant::now();
    while produce(&mut keep, "keep", big.clone()).0 == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "keep never failed"
        );
    }
    assert_eq!(fetch_first(&mut keep, "keep").0, 0);
    // Deleting the ballast topic works on the full disk and frees its space.
    let response: DeleteTopicsResponse = admin.call(
        ApiKey::DeleteTopics,
        6,
        &DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("ballast"))),
        ]),
    );
    assert_eq!(response.responses[0].error_code, 0, "{response:?}");
    // Appends resume by themselves, within the retry backoff.
    let started = Instant::now();
    loop {
        let (code, _) = produce(&mut keep, "keep", small.clone());
        if code == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "appends did not resume after space returned (error {code})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, bytes) = fetch_first(&mut keep, "keep");
    assert_eq!((code, bytes > 0), (0, true));
    assert!(broker.stop().success());
    let lines = log_lines.join().unwrap();
    assert!(
        lines < 100,
        "{lines} log lines for a few hundred failed requests: repeated errors must be rate-limited"
    );
}
