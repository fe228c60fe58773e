//! What one client can cost the broker, and what happens when something inside it fails:
//! a handler panic closes only its connection; a core that dies stops the process; an
//! unwritable stderr changes nothing; idle and stalled connections are closed; a stalled
//! frame holds no buffer budget; one address cannot take every slot; a client that hangs
//! up with long-polls parked frees its slot at once.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Broker, RawClient, raw_request_frame, temp_dir};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// An ApiVersions v0 request frame with `client_id`.
fn api_versions_from(client_id: &str) -> Vec<u8> {
    raw_request_frame(ApiKey::ApiVersions, 0, client_id, false, &[])
}

fn assert_serves(address: &str) {
    let mut client = RawClient::connect(address);
    let response: ApiVersionsResponse =
        client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0, "{address} serves");
}

#[test]
fn a_handler_panic_closes_only_its_connection() {
    let dir = temp_dir("handler-panic");
    let broker = Broker::start(dir.path(), &["--fault-panic-client-id", "boom"]);
    for round in 0..3 {
        for core in 0..2 {
            let mut victim = RawClient::connect(&broker.core_address(core));
            victim.stream.write_all(&api_versions_from("boom")).unwrap();
            assert!(
                victim.is_closed_within(Duration::from_secs(10)),
                "round {round} core {core}"
            );
            assert_serves(&broker.core_address(core));
        }
    }
    assert!(broker.stop().success(), "a clean stop after caught panics");
}

#[test]
fn a_core_that_dies_stops_the_process_with_an_error() {
    let dir = temp_dir("core-panic");
    let mut broker = Broker::start(dir.path(), &["--fault-panic-core", "1"]);
    let status = broker
        .wait_exit(Duration::from_secs(30))
        .expect("the broker exits once a core has died, instead of serving half-alive");
    assert!(!status.success(), "{status:?}");
}

#[test]
fn an_unwritable_stderr_does_not_stop_a_core() {
    let dir = temp_dir("broken-stderr");
    let mut broker = Broker::start_with_stderr(dir.path(), &[], Stdio::piped());
    // Close the read end: every later log line fails with EPIPE.
    drop(broker.take_stderr());
    for core in 0..2 {
        // Each malformed frame logs a WARN line.
        for _ in 0..5 {
            let mut bad = RawClient::connect(&broker.core_address(core));
            // Metadata v4 with a topic count the frame cannot hold.
            let frame = [
                0, 0, 0, 15, 0, 3, 0, 4, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1,
            ];
            bad.stream.write_all(&frame).unwrap();
            assert!(bad.is_closed_within(Duration::from_secs(10)));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(broker.is_running());
    for core in 0..2 {
        assert_serves(&broker.core_address(core));
    }
    assert!(broker.stop().success(), "SIGTERM still stops it cleanly");
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let dir = temp_dir("idle");
    let broker = Broker::start(dir.path(), &["--connections-max-idle-ms", "300"]);
    let mut idle = RawClient::connect(&broker.core_address(0));
    let started = Instant::now();
    assert!(idle.is_closed_within(Duration::from_secs(10)));
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A connection in use stays open across several idle periods.
    let mut busy = RawClient::connect(&broker.core_address(0));
    for _ in 0..6 {
        let _: ApiVersionsResponse =
            busy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stalled_frames_hold_no_budget_and_are_closed() {
    let dir = temp_dir("stalled");
    // Default limits: 100 MiB frames, 512 MiB of request bytes per core. Six frames
    // announcing 100 MiB each used to reserve 600 MiB and lock the core.
    let broker = Broker::start(dir.path(), &["--request-read-timeout-ms", "3000"]);
    let mut stalled = Vec::new();
    for _ in 0..6 {
        let mut client = RawClient::connect(&broker.core_address(0));
        client
            .stream
            .write_all(&(100i32 << 20).to_be_bytes())
            .unwrap();
        client.stream.write_all(&[0, 3, 0, 12]).unwrap();
        stalled.push(client);
    }
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_serves(&broker.core_address(0));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served while the stalled frames wait"
    );
    for client in &mut stalled {
        assert!(
            client.is_closed_within(Duration::from_secs(10)),
            "a stalled frame is closed after --request-read-timeout-ms"
        );
    }
}

#[test]
fn one_address_cannot_take_every_slot() {
    let dir = temp_dir("per-ip");
    let broker = Broker::start(dir.path(), &["--max-connections-per-ip", "3"]);
    let address = broker.core_address(0);
    let held: Vec<RawClient> = (0..3).map(|_| RawClient::connect(&address)).collect();
    let mut fourth = RawClient::connect(&address);
    assert!(fourth.is_closed_within(Duration::from_secs(10)));
    // Another client address on the loopback network is still served.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.2:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket
        .connect(&address.parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    let mut other = RawClient::from_stream(socket.into());
    let response: ApiVersionsResponse =
        other.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    // A slot given back is reusable.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_serves(&address);
}

#[test]
fn a_client_that_hangs_up_frees_its_parked_fetches_at_once() {
    let dir = temp_dir("hang-up");
    let broker = Broker::start(dir.path(), &["--max-connections-per-core", "1"]);
    let address = broker.core_address(0);
    let mut poller = RawClient::connect(&address);
    let metadata: MetadataResponse = poller.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("parked")))),
            ]))
            .with_allow_auto_topic_creation(true),
    );
    let partition = metadata.topics[0]
        .partitions
        .iter()
        .find(|p| p.leader_id.0 == 0)
        .expect("a partition on core 0")
        .partition_index;
    // A fetch that parks for 20 s: nothing to read yet.
    poller.send(
        ApiKey::Fetch,
        12,
        &FetchRequest::default()
            .with_max_wait_ms(20_000)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("parked")))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    );
    std::thread::sleep(Duration::from_millis(300));
    drop(poller);
    // The only slot of core 0 is free again well before the fetch's wait would end.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut client = RawClient::connect(&address);
        client
            .stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let _ = client.stream.write_all(&api_versions_from("after"));
        if client.receive_frame().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hung-up client's slot is still held"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
