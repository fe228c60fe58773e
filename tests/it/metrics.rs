//! The Prometheus endpoint (issue 16): `GET /metrics` answers in the text exposition
//! format with requests per API and version, latency histograms, connections per core,
//! traffic per topic and each partition's offsets and size, and the numbers move with the
//! load; `spindle top` shows them live.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::cluster::wait_for;
use crate::common::{Broker, temp_dir};
use crate::min_insync::produce;

/// One HTTP request to the endpoint: `(status line, body)`.
fn get(address: &str, request: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

pub(crate) fn scrape(address: &str) -> String {
    let (status, body) = get(address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

/// The value of the sample whose name and labels start with `prefix`.
pub(crate) fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// OffsetCommit v8 of `offset` for `topic`-0 by `group`, outside any generation (as admin
/// tools commit).
pub(crate) fn commit(client: &mut crate::common::RawClient, group: &str, topic: &str, offset: i64) {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &request);
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
}

/// A consumer's Fetch (v12) of `topic`-0 from offset 0: the record bytes answered.
fn fetched_bytes(client: &mut crate::common::RawClient, topic: &str) -> usize {
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    let request = crate::common::fetch_request(topic, uuid::Uuid::nil(), 0, 0);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    data.records.as_ref().map_or(0, |records| records.len())
}

#[test]
fn the_metrics_endpoint_counts_requests_connections_and_partition_offsets() {
    let dir = temp_dir("metrics");
    let broker = Broker::start(dir.path(), &["--cores", "1", "--default-partitions", "1"]);
    let before = scrape(&broker.metrics);
    assert!(
        before.contains("# TYPE spindle_requests counter"),
        "{before}"
    );
    assert!(
        before.contains("# TYPE spindle_request_latency_seconds histogram"),
        "{before}"
    );
    assert_eq!(
        sample(&before, "spindle_connections{core=\"0\"}"),
        Some(0.0)
    );

    let mut client = crate::common::RawClient::connect(&broker.bootstrap);
    for _ in 0..5 {
        assert_eq!(produce(&mut client, "observed", 1), 0);
    }
    // One client connection open; five Produce v9 requests and their latencies; the
    // partition's log end at 5 once the core has copied its gauges (each second).
    let after = wait_for("the partition's gauges", || {
        let body = scrape(&broker.metrics);
        let end = sample(
            &body,
            "spindle_partition_log_end_offset{topic=\"observed\",partition=\"0\"",
        )?;
        (end == 5.0).then_some(body)
    });
    assert_eq!(sample(&after, "spindle_connections{core=\"0\"}"), Some(1.0));
    assert_eq!(
        sample(
            &after,
            "spindle_requests_total{core=\"0\",api=\"Produce\",version=\"9\"}"
        ),
        Some(5.0),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "spindle_request_latency_seconds_count{core=\"0\",api=\"Produce\"}"
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &after,
            "spindle_request_latency_seconds_bucket{le=\"+Inf\",core=\"0\",api=\"Produce\"}"
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &after,
            "spindle_partition_high_watermark{topic=\"observed\",partition=\"0\""
        ),
        Some(5.0)
    );
    let size = sample(
        &after,
        "spindle_partition_size_bytes{topic=\"observed\",partition=\"0\"",
    )
    .unwrap();
    assert!(size > 0.0);
    // Five one-record batches in: their bytes are what the log holds.
    assert_eq!(
        sample(&after, "spindle_topic_records_in_total{topic=\"observed\"}"),
        Some(5.0)
    );
    assert_eq!(
        sample(&after, "spindle_topic_bytes_in_total{topic=\"observed\"}"),
        Some(size)
    );
    // A consumer reads them all back: the same bytes out.
    let fetched = fetched_bytes(&mut client, "observed");
    assert_eq!(fetched as f64, size);
    wait_for("the bytes out", || {
        let body = scrape(&broker.metrics);
        (sample(&body, "spindle_topic_bytes_out_total{topic=\"observed\"}") == Some(size))
            .then_some(())
    });
    // A group commits offset 2 of the five: its committed offset and lag (to the high
    // watermark, 5) show.
    commit(&mut client, "watchers", "observed", 2);
    wait_for("the group's lag", || {
        let body = scrape(&broker.metrics);
        let labels = "{group=\"watchers\",topic=\"observed\",partition=\"0\"}";
        let lag = sample(&body, &format!("spindle_group_lag{labels}"))?;
        let committed = sample(&body, &format!("spindle_group_committed_offset{labels}"))?;
        ((lag, committed) == (3.0, 2.0)).then_some(())
    });
    // The log synced what it wrote (the interval policy, within its interval), its batches
    // are kept for reads, and no request holds bytes now.
    let body = wait_for("an fsync", || {
        let body = scrape(&broker.metrics);
        (sample(&body, "spindle_log_fsyncs_total{core=\"0\"}")? > 0.0).then_some(body)
    });
    assert!(sample(&body, "spindle_log_fsync_seconds_total{core=\"0\"}").is_some_and(|s| s > 0.0));
    assert!(sample(&body, "spindle_cache_bytes{core=\"0\"}").is_some_and(|bytes| bytes > 0.0));
    assert_eq!(
        sample(&body, "spindle_request_bytes_held{core=\"0\"}"),
        Some(0.0)
    );
    // Errors per API and code: a produce to a partition that does not exist, and a fetch
    // past the log's end.
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, b"v")];
    let batch = bytes::Bytes::from(spindle_protocol::record_batch::build_batch(1, &records));
    let (code, _) = crate::common::produce_records(&mut client, "observed", 9, batch, 1);
    assert_eq!(code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let fetched: kafka_protocol::messages::FetchResponse = client.call(
        kafka_protocol::messages::ApiKey::Fetch,
        12,
        &crate::common::fetch_request("observed", uuid::Uuid::nil(), 0, 500),
    );
    assert_eq!(fetched.responses[0].partitions[0].error_code, 1);
    let body = scrape(&broker.metrics);
    assert_eq!(
        sample(
            &body,
            "spindle_errors_total{core=\"0\",api=\"Produce\",error=\"3\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "spindle_errors_total{core=\"0\",api=\"Fetch\",error=\"1\"}"
        ),
        Some(1.0)
    );
    assert!(!body.contains("error=\"0\""), "successes are not errors");
    // The core worked, its request queue among others, and every partition it leads serves.
    let busy = |body: &str, series: &str| sample(body, series).is_some_and(|s| s > 0.0);
    assert!(
        busy(&body, "spindle_executor_busy_seconds_total{core=\"0\"}"),
        "{body}"
    );
    assert!(busy(
        &body,
        "spindle_task_queue_busy_seconds_total{core=\"0\",queue=\"requests\"}"
    ));
    assert_eq!(
        sample(&body, "spindle_offline_partitions{core=\"0\"}"),
        Some(0.0)
    );
    drop(client);

    // Anything else gets a clear HTTP answer, and the endpoint keeps serving.
    assert_eq!(
        get(&broker.metrics, "GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        get(&broker.metrics, "POST /metrics HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(
        get(&broker.metrics, &huge).0,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert!(scrape(&broker.metrics).contains("spindle_requests_total"));
    assert!(broker.stop().success());
}

#[test]
fn a_metrics_port_in_use_is_a_one_line_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = temp_dir("metrics-port-taken");
    let output = Broker::command(dir.path(), &["--metrics-listen", &address])
        .output()
        .expect("run spindle");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("binding the metrics listener"), "{stderr}");
}

#[test]
fn spindle_top_shows_rates_per_api_and_topic_from_the_endpoint() {
    let dir = temp_dir("metrics-top");
    let broker = Broker::start(dir.path(), &["--cores", "1", "--default-partitions", "1"]);
    let mut client = crate::common::RawClient::connect(&broker.bootstrap);
    assert_eq!(produce(&mut client, "watched", 1), 0);
    // Wait for the gauges' copy, so the topic shows from the first refresh.
    wait_for("the topic's counters", || {
        sample(
            &scrape(&broker.metrics),
            "spindle_topic_records_in_total{topic=\"watched\"}",
        )
        .filter(|&records| records == 1.0)
    });
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "top",
            "--plain",
            "--iterations",
            "2",
            "--interval-ms",
            "300",
        ])
        .args(["--metrics", &broker.metrics])
        .output()
        .expect("run spindle top");
    assert!(output.status.success());
    let view = String::from_utf8_lossy(&output.stdout);
    assert_eq!(view.matches("spindle top: ").count(), 2, "{view}");
    assert!(view.contains("connections 1"), "{view}");
    assert!(view.contains("Produce"), "{view}");
    assert!(view.contains("watched"), "{view}");

    // An endpoint that is not there: one line, status 1.
    drop(client);
    assert!(broker.stop().success());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["top", "--iterations", "1", "--metrics", "127.0.0.1:1"])
        .output()
        .expect("run spindle top");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_lost_follower_shows_as_an_under_replicated_partition() {
    use crate::replication::{TOPIC, create_replicated, fast_failing_cluster, in_sync};
    let root = temp_dir("metrics-under-replicated");
    let (_cluster, mut nodes) = fast_failing_cluster(root.path());
    let address =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    create_replicated(&address(&nodes, 0), 1, 1);
    let leader = wait_for("three in sync", || {
        let (isr, leader) = in_sync(&address(&nodes, 0));
        (isr.len() == 3).then_some(leader)
    });
    let leading = (leader / 1000) as usize;
    let metrics = nodes[leading].as_ref().unwrap().metrics.clone();
    let series = format!("{{topic=\"{TOPIC}\",partition=\"0\",replicas=\"3\"}}");
    let health = |metrics: &str| {
        let body = scrape(metrics);
        Some((
            sample(
                &body,
                &format!("spindle_partition_in_sync_replicas{series}"),
            )?,
            sample(&body, "spindle_under_replicated_partitions{core=\"0\"}")?,
        ))
    };
    wait_for("three in sync, as the leader's metrics say", || {
        (health(&metrics)? == (3.0, 0.0)).then_some(())
    });
    // A follower dies: once it is fenced and dropped from the in-sync set, the leader's
    // metrics show the partition under-replicated.
    let follower = (0..3).find(|&node| node != leading).unwrap();
    nodes[follower].take().unwrap().kill();
    wait_for("two in sync, under-replicated", || {
        (health(&metrics)? == (2.0, 1.0)).then_some(())
    });
    let body = scrape(&metrics);
    assert_eq!(
        sample(&body, "spindle_isr_shrinks_total{core=\"0\"}"),
        Some(1.0),
        "one shrink counted"
    );
}
