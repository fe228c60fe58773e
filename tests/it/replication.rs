//! Replication across nodes (issue 13, second part): a topic with three replicas on three
//! nodes. The followers copy the leader's log byte for byte (Kafka's replica fetch), an
//! acks=all answer waits until every replica holds the batch, and consumers never read
//! past the high watermark: what only the leader holds stays invisible until the
//! followers have it; a killed or paused leader is replaced from the in-sync replicas
//! with nothing acknowledged lost (tests/it/divergence.rs: a returning leader's own tail).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use spindle_protocol::record_batch::build_batch;

use crate::cluster::{Cluster, create_topic, metadata, partition_metadata, read_all, wait_for};
use crate::common::{Broker, RawClient, temp_dir};

pub(crate) const TOPIC: &str = "replicated";

/// `partition -> replicas (leader first)` as `address` reports them.
pub(crate) fn replicas(address: &str) -> BTreeMap<i32, Vec<i32>> {
    metadata(address)
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            assert_eq!(
                p.replica_nodes[0], p.leader_id,
                "the leader is listed first"
            );
            (
                p.partition_index,
                p.replica_nodes.iter().map(|b| b.0).collect(),
            )
        })
        .collect()
}

/// `spindle dump-log --batches` of one replica: every batch's offsets, size and timestamp.
pub(crate) fn dump(dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["dump-log", "--batches", "--dir"])
        .arg(dir)
        .output()
        .expect("dump-log");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_replica_holds_the_leaders_log_byte_for_byte() {
    let root = temp_dir("replication-copies");
    let cluster = Cluster::new(root.path(), 3);
    let nodes = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(2), TOPIC, 3, 3).expect("create");
    let placement = wait_for("the topic everywhere", || {
        let seen = replicas(&address(1));
        (seen.len() == 3).then_some(seen)
    });
    for (partition, brokers) in &placement {
        let nodes: BTreeSet<i32> = brokers.iter().map(|b| b / 1000).collect();
        assert_eq!(
            nodes.len(),
            3,
            "partition {partition}: one replica per node"
        );
    }
    let leaders: BTreeSet<i32> = placement.values().map(|b| b[0] / 1000).collect();
    assert_eq!(leaders.len(), 3, "leaders spread: {placement:?}");
    assert!(
        (0..3).all(|node| replicas(&address(node)) == placement),
        "every node reports the same replicas"
    );

    // Without a replication factor, a topic gets the default: 3 in a quorum of three.
    create_topic(&address(0), "defaulted", 2, -1).expect("create");
    let defaulted = wait_for("the defaulted topic", || {
        let response = metadata(&address(0));
        response
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "defaulted"))
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| p.replica_nodes.len())
                    .collect::<Vec<_>>()
            })
            .filter(|counts| counts.len() == 2)
    });
    assert_eq!(defaulted, vec![3, 3]);

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", address(1))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    const MESSAGES: usize = 3_000;
    for i in 0..MESSAGES {
        let (key, value) = (format!("k{}", i % 40), format!("{i}"));
        while producer
            .send(BaseRecord::to(TOPIC).key(&key).payload(&value))
            .is_err()
        {
            producer.poll(Duration::from_millis(10));
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every message acknowledged by all replicas");
    let consumed = read_all(&address(0), TOPIC, 3, MESSAGES);
    assert_eq!(consumed.len(), MESSAGES);

    // Acknowledged by every replica: stop the nodes and read each copy from disk.
    for node in nodes {
        let status = node.stop();
        assert!(status.success(), "{status}");
    }
    for partition in 0..3 {
        let copies: Vec<String> = (0..3)
            .map(|node| dump(&cluster.dirs[node].join(format!("{TOPIC}-{partition}"))))
            .collect();
        assert!(copies[0].contains("offsets 0.."), "{}", copies[0]);
        assert_eq!(
            copies[0], copies[1],
            "partition {partition}: node 0 and node 1"
        );
        assert_eq!(
            copies[0], copies[2],
            "partition {partition}: node 0 and node 2"
        );
    }
}

pub(crate) fn produce(
    client: &mut RawClient,
    partition: i32,
    value: &str,
    acks: i16,
    timeout_ms: i32,
) -> (i16, i64) {
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, value.as_bytes())];
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(build_batch(1_700_000_000_000, &records)))),
                ]),
        ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// An acks=all produce to a broker just named leader in another node's metadata: its own
/// node may learn it a moment later and answer NOT_LEADER_OR_FOLLOWER (nothing appended)
/// until then. The offset it was appended at.
pub(crate) fn produce_once_leading(client: &mut RawClient, partition: i32, value: &str) -> i64 {
    wait_for("the new leader takes writes", || {
        let (code, offset) = produce(client, partition, value, -1, 10_000);
        assert!(code == 0 || code == 6, "error {code}");
        (code == 0).then_some(offset)
    })
}

/// A consumer's fetch of `partition` from `offset`: `(high watermark, record bytes)`.
pub(crate) fn consumer_fetch(client: &mut RawClient, partition: i32, offset: i64) -> (i64, usize) {
    let (error_code, high_watermark, bytes) = fetch_at(client, partition, offset);
    assert_eq!(error_code, 0);
    (high_watermark, bytes)
}

/// A consumer's Fetch of `partition` from `offset`: `(error code, high watermark, bytes)`.
fn fetch_at(client: &mut RawClient, partition: i32, offset: i64) -> (i16, i64, usize) {
    let request = crate::common::fetch_request(TOPIC, uuid::Uuid::nil(), partition, offset);
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
    let data = &response.responses[0].partitions[0];
    (
        data.error_code,
        data.high_watermark,
        data.records.as_ref().map_or(0, Bytes::len),
    )
}

#[test]
fn consumers_never_see_what_only_the_leader_holds_and_acks_all_waits_for_the_followers() {
    let root = temp_dir("replication-watermark");
    let cluster = Cluster::new(root.path(), 3);
    let nodes: Vec<Broker> = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(0), TOPIC, 1, 3).expect("create");
    let placement = wait_for("the topic", || {
        let seen = replicas(&address(0));
        (seen.len() == 1).then_some(seen)
    });
    let leader_node = (placement[&0][0] / 1000) as usize;
    let mut leader = RawClient::connect(&nodes[leader_node].core_address(0));
    assert_eq!(produce(&mut leader, 0, "replicated", -1, 10_000), (0, 0));
    wait_for("the first record visible", || {
        (consumer_fetch(&mut leader, 0, 0).0 == 1).then_some(())
    });

    // The premise: both followers are in sync before they pause. A follower out of the set
    // (fenced after a late heartbeat on an overloaded machine) does not hold the high
    // watermark back, and Kafka's rule would then rightly expose what only the leader holds.
    wait_for("both followers in sync", || {
        (in_sync(&address(leader_node)).0.len() == 3).then_some(())
    });

    // Both followers paused: the leader alone takes the next record.
    for node in (0..3).filter(|&node| node != leader_node) {
        nodes[node].signal(libc::SIGSTOP);
    }
    assert_eq!(produce(&mut leader, 0, "leader-only", 1, 10_000), (0, 1));
    std::thread::sleep(Duration::from_millis(300));
    let seen = consumer_fetch(&mut leader, 0, 1);
    if seen != (1, 0) {
        // Once seen in CI (HW 2 with both followers stopped) and not reproduced in a dozen
        // runs since: say how the leader saw the partition then.
        let partition = partition_metadata(&nodes[leader_node].bootstrap, TOPIC, 0);
        panic!(
            "a consumer sees nothing past the high watermark, yet saw {seen:?}; \
             leader {leader_node}'s view of the partition: {partition:?}"
        );
    }
    let started = Instant::now();
    let (error, _) = produce(&mut leader, 0, "waits", -1, 1_000);
    assert_eq!(
        error, 7,
        "acks=all times out (REQUEST_TIMED_OUT) without its followers"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Resumed, the followers catch up, and the records become visible.
    for node in (0..3).filter(|&node| node != leader_node) {
        nodes[node].signal(libc::SIGCONT);
    }
    let (high_watermark, bytes) = wait_for("the followers caught up", || {
        let seen = consumer_fetch(&mut leader, 0, 1);
        (seen.0 == 3).then_some(seen)
    });
    assert_eq!(high_watermark, 3);
    assert!(bytes > 0);
    assert_eq!(produce(&mut leader, 0, "after", -1, 10_000), (0, 3));
}

/// `(in-sync replicas, leader)` of partition 0 as `address` reports them.
pub(crate) fn in_sync(address: &str) -> (BTreeSet<i32>, i32) {
    let response = metadata(address);
    let partition = response
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == 0)
        .expect("partition 0");
    (
        partition.isr_nodes.iter().map(|b| b.0).collect(),
        partition.leader_id.0,
    )
}

#[test]
fn lagging_followers_leave_the_in_sync_set_and_min_insync_replicas_guards_acks_all() {
    let root = temp_dir("replication-isr");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.extra_args = vec!["--replica-lag-time-max-ms".into(), "1000".into()];
    let nodes: Vec<Broker> = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    create_replicated(&address(0), 1, 2);
    let (all, leader) = wait_for("three in sync", || {
        let (isr, leader) = in_sync(&address(0));
        (isr.len() == 3).then_some((isr, leader))
    });
    let leader_node = (leader / 1000) as usize;
    let followers: Vec<usize> = (0..3).filter(|&n| n != leader_node).collect();
    let mut client = RawClient::connect(&nodes[leader_node].core_address(0));
    assert_eq!(produce(&mut client, 0, "a", -1, 10_000), (0, 0));

    // One follower stops: after the lag time it leaves the set; two in sync suffice.
    nodes[followers[0]].signal(libc::SIGSTOP);
    let stopped_at = Instant::now();
    wait_for("one follower out", || {
        (in_sync(&address(leader_node)).0.len() == 2).then_some(())
    });
    eprintln!(
        "in-sync set shrank {:?} after SIGSTOP (lag limit 1 s)",
        stopped_at.elapsed()
    );
    assert!(
        !in_sync(&address(leader_node))
            .0
            .contains(&((followers[0] * 1000) as i32))
    );
    assert_eq!(produce(&mut client, 0, "b", -1, 10_000), (0, 1));

    // The other one too. Two of three nodes are stopped, so the quorum has no majority
    // and the in-sync set cannot shrink further; once the lag time has passed the leader
    // still refuses acks=all at once (nothing appended), and acks=1 still works. What only
    // the leader holds stays invisible: the committed in-sync set still names the other
    // follower.
    nodes[followers[1]].signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    assert_eq!(
        produce(&mut client, 0, "c", -1, 10_000).0,
        19,
        "NOT_ENOUGH_REPLICAS"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );
    assert_eq!(produce(&mut client, 0, "d", 1, 10_000), (0, 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        consumer_fetch(&mut client, 0, 2),
        (2, 0),
        "not yet on the in-sync follower"
    );

    // Both resume: they catch up and rejoin; acks=all works again.
    for &follower in &followers {
        nodes[follower].signal(libc::SIGCONT);
    }
    wait_for("all three back in sync", || {
        (in_sync(&address(leader_node)).0 == all).then_some(())
    });
    assert_eq!(
        consumer_fetch(&mut client, 0, 2).0,
        3,
        "the acks=1 record visible"
    );
    assert_eq!(produce(&mut client, 0, "e", -1, 10_000), (0, 3));
}

/// One acknowledged message: partition, offset, value, when.
type Delivery = (i32, i64, String, Instant);

/// Delivery reports of every acknowledged message.
#[derive(Clone, Default)]
struct Acked {
    acked: std::sync::Arc<std::sync::Mutex<Vec<Delivery>>>,
    failed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Acked {
    /// `(partition, offset, value)` of every acknowledged message.
    fn delivered(&self) -> Vec<(i32, i64, String)> {
        self.acked
            .lock()
            .unwrap()
            .iter()
            .map(|(p, o, v, _)| (*p, *o, v.clone()))
            .collect()
    }
}

impl rdkafka::ClientContext for Acked {}

impl rdkafka::producer::ProducerContext for Acked {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        use rdkafka::Message;
        match result {
            Ok(message) => {
                let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                self.acked.lock().unwrap().push((
                    message.partition(),
                    message.offset(),
                    value,
                    Instant::now(),
                ));
            }
            Err((error, _)) => {
                if self
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    == 0
                {
                    eprintln!("first failed delivery: {error}");
                }
            }
        }
    }
}

#[test]
fn a_killed_leader_fails_over_and_no_acknowledged_message_is_lost() {
    let root = temp_dir("replication-failover");
    let (cluster, mut nodes) = fast_failing_cluster(root.path());
    let address =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    const PARTITIONS: i32 = 6;
    create_replicated(&address(&nodes, 0), PARTITIONS, 2);
    let before = wait_for("the topic everywhere", || {
        let seen = replicas(&address(&nodes, 2));
        (seen.len() == PARTITIONS as usize).then_some(seen)
    });
    let victim = 0usize;
    let led_by_victim: BTreeSet<i32> = before
        .iter()
        .filter(|(_, replicas)| replicas[0] / 1000 == victim as i32)
        .map(|(&partition, _)| partition)
        .collect();
    assert!(!led_by_victim.is_empty(), "{before:?}");

    let all: String = (0..3)
        .map(|n| address(&nodes, n))
        .collect::<Vec<_>>()
        .join(",");
    let acked = Acked::default();
    let producer: ThreadedProducer<Acked> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create_with_context(acked.clone())
        .expect("producer");
    let keys = 24;
    let mut sent = 0usize;
    let send_for = |producer: &ThreadedProducer<Acked>, sent: &mut usize, time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until {
            let (key, value) = (format!("k{}", *sent % keys), format!("{}", *sent));
            match producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
                Ok(()) => *sent += 1,
                Err(_) => producer.poll(Duration::from_millis(5)),
            }
            if (*sent).is_multiple_of(200) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    send_for(&producer, &mut sent, Duration::from_secs(1));

    // SIGKILL the node leading some partitions, while producing.
    let killed_at = Instant::now();
    nodes[victim].take().unwrap().kill();
    send_for(&producer, &mut sent, Duration::from_secs(4));
    let after = wait_for("new leaders", || {
        let seen = replicas(&address(&nodes, 1));
        led_by_victim
            .iter()
            .all(|p| seen[p][0] / 1000 != victim as i32)
            .then_some(seen)
    });
    // The first acknowledgement from a partition the victim led, after the kill.
    let first_ack = acked
        .acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(partition, _, _, at)| *at > killed_at && led_by_victim.contains(partition))
        .map(|(_, _, _, at)| at.duration_since(killed_at))
        .min();
    eprintln!(
        "failover: first acks=all answer on a new leader {first_ack:?} after SIGKILL (session timeout 1 s)"
    );
    assert!(
        first_ack.is_some(),
        "no partition of the killed leader took writes again"
    );
    for partition in &led_by_victim {
        let replicas = &after[partition];
        assert_eq!(replicas.len(), 3, "the dead replica stays a replica");
    }

    // The node returns, catches up and rejoins every in-sync set.
    nodes[victim] = Some(cluster.spawn(victim).listening());
    send_for(&producer, &mut sent, Duration::from_secs(1));
    producer.flush(Duration::from_secs(60)).expect("flush");
    wait_for("every partition fully in sync", || {
        let response = metadata(&address(&nodes, 1));
        response
            .topics
            .iter()
            .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
            .flat_map(|t| t.partitions.iter())
            .all(|p| p.isr_nodes.len() == 3)
            .then_some(())
    });
    assert_eq!(
        acked.failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "every message acknowledged in the end"
    );

    // Every acknowledged message is there once, at the offset it was acknowledged with,
    // with no gaps, in order per key.
    let acked = acked.delivered();
    assert_eq!(acked.len(), sent);
    let consumed = read_all(&all, TOPIC, PARTITIONS, sent);
    assert_eq!(
        consumed.len(),
        sent,
        "every acknowledged message is read back"
    );
    let at: BTreeMap<(i32, i64), String> = consumed
        .iter()
        .map(|(p, o, _, v)| ((*p, *o), v.clone()))
        .collect();
    assert_eq!(at.len(), sent, "no offset read twice");
    check_acknowledged("kill", &acked, &at);
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (partition, offset, key, value) in &consumed {
        let expected = next.entry(*partition).or_insert(0);
        assert_eq!(offset, expected, "no gap in partition {partition}");
        *expected += 1;
        let value: usize = value.parse().unwrap();
        if let Some(previous) = last.insert(key.clone(), value) {
            assert!(previous < value, "{key}: {previous} then {value}");
        }
    }
}

#[test]
fn a_paused_leader_is_replaced_and_what_it_takes_after_is_never_visible() {
    let root = temp_dir("replication-zombie");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = vec!["--replica-lag-time-max-ms".into(), "2000".into()];
    let nodes: Vec<Broker> = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(0), TOPIC, 1, 3).expect("create");
    let (_, leader) = wait_for("three in sync", || {
        let (isr, leader) = in_sync(&address(0));
        (isr.len() == 3).then_some((isr, leader))
    });
    let zombie = (leader / 1000) as usize;
    let mut old_leader = RawClient::connect(&nodes[zombie].core_address(0));
    for i in 0..10 {
        assert_eq!(
            produce(&mut old_leader, 0, &format!("before-{i}"), -1, 10_000),
            (0, i)
        );
    }

    // Paused past the session timeout: the others fence it and elect a new leader.
    nodes[zombie].signal(libc::SIGSTOP);
    let other = (zombie + 1) % 3;
    let new_leader = wait_for("a new leader", || {
        let (_, leader) = in_sync(&address(other));
        (leader >= 0 && leader / 1000 != zombie as i32).then_some(leader)
    });
    let mut leader_client =
        RawClient::connect(&nodes[(new_leader / 1000) as usize].core_address(0));
    assert_eq!(
        produce_once_leading(&mut leader_client, 0, "after-failover"),
        10
    );

    // Resumed, it still believes it leads until it hears from the quorum. Whatever it takes
    // in that moment is never acknowledged to every replica and never becomes visible.
    nodes[zombie].signal(libc::SIGCONT);
    let (code, _) = produce(&mut old_leader, 0, "zombie-acks1", 1, 2_000);
    let (all_code, _) = produce(&mut old_leader, 0, "zombie-acksall", -1, 20_000);
    // Never success; and once it learns it was replaced, NOT_LEADER_OR_FOLLOWER (the client
    // goes to the new leader at once), not REQUEST_TIMED_OUT at the request's timeout.
    assert_eq!(
        all_code, 6,
        "acks=all on a fenced leader: NOT_LEADER_OR_FOLLOWER"
    );
    eprintln!("the zombie answered acks=1 with {code} and acks=all with {all_code}");
    wait_for("all three in sync under the new leader", || {
        let (isr, leader) = in_sync(&address(other));
        (isr.len() == 3 && leader == new_leader).then_some(())
    });
    assert_eq!(produce(&mut leader_client, 0, "later", -1, 10_000), (0, 11));
    for node in 0..3 {
        let values: Vec<String> = read_all(&address(node), TOPIC, 1, 12)
            .into_iter()
            .map(|(_, _, _, value)| value)
            .collect();
        let expected: Vec<String> = (0..10)
            .map(|i| format!("before-{i}"))
            .chain(["after-failover".to_string(), "later".to_string()])
            .collect();
        assert_eq!(values, expected, "as read through node {node}");
    }
    // And on disk, the old leader's copy is the new leader's.
    drop(old_leader);
    drop(leader_client);
    let dirs = cluster.dirs.clone();
    for node in nodes {
        assert!(node.stop().success());
    }
    let copies: Vec<String> = dirs
        .iter()
        .map(|dir| dump(&dir.join(format!("{TOPIC}-0"))))
        .collect();
    assert_eq!(copies[zombie], copies[(new_leader / 1000) as usize]);
}

/// A small deterministic generator for the fault schedule (xorshift64*).
struct Schedule(u64);

impl Schedule {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % below
    }
}

#[test]
fn seeded_faults_never_lose_duplicate_or_rewrite_an_acknowledged_message() {
    // SPINDLE_FAULT_SEED replays a schedule; otherwise the clock picks one.
    let seed: u64 = std::env::var("SPINDLE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("fault schedule seed {seed} (replay with SPINDLE_FAULT_SEED={seed})");
    let mut schedule = Schedule(seed);
    let root = temp_dir("replication-faults");
    let (cluster, mut nodes) = fast_failing_cluster(root.path());
    let address =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    const PARTITIONS: i32 = 4;
    create_replicated(&address(&nodes, 0), PARTITIONS, 2);
    let all: String = (0..3)
        .map(|n| address(&nodes, n))
        .collect::<Vec<_>>()
        .join(",");
    let all_in_sync = |nodes: &[Option<Broker>]| {
        let live: Vec<usize> = (0..3).filter(|&n| nodes[n].is_some()).collect();
        let response = metadata(&address(nodes, live[0]));
        let partitions: Vec<_> = response
            .topics
            .iter()
            .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
            .flat_map(|t| t.partitions.iter())
            .collect();
        (partitions.len() == PARTITIONS as usize
            && partitions.iter().all(|p| p.isr_nodes.len() == 3))
        .then_some(())
    };
    wait_for("all in sync", || all_in_sync(&nodes));

    // A reader that keeps reading everything while the faults happen: no offset may ever
    // be read with two different contents.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, all) = (stop.clone(), all.clone());
        std::thread::spawn(move || {
            use rdkafka::Message;
            use rdkafka::consumer::{BaseConsumer, Consumer};
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &all)
                .set("group.id", "fault-reader-unused")
                .set("enable.auto.commit", "false")
                .set("topic.metadata.refresh.interval.ms", "500")
                .create()
                .expect("consumer");
            let mut assignment = rdkafka::TopicPartitionList::new();
            for partition in 0..PARTITIONS {
                assignment
                    .add_partition_offset(TOPIC, partition, rdkafka::Offset::Beginning)
                    .unwrap();
            }
            consumer.assign(&assignment).expect("assign");
            let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
            let mut rewritten = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                    let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                    let at = (message.partition(), message.offset());
                    if let Some(before) = seen.insert(at, value.clone())
                        && before != value
                    {
                        rewritten.push((at, before, value));
                    }
                }
            }
            (seen, rewritten)
        })
    };

    let acked = Acked::default();
    let producer: ThreadedProducer<Acked> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create_with_context(acked.clone())
        .expect("producer");
    let mut sent = 0usize;
    let mut send_for = |producer: &ThreadedProducer<Acked>, time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until {
            let (key, value) = (format!("k{}", sent % 16), format!("{sent}"));
            match producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
                Ok(()) => sent += 1,
                Err(_) => producer.poll(Duration::from_millis(5)),
            }
            if sent.is_multiple_of(100) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    send_for(&producer, Duration::from_millis(500));
    for step in 0..5 {
        let node = schedule.next(3) as usize;
        let pause = Duration::from_millis(1200 + schedule.next(1000));
        match schedule.next(3) {
            0 => {
                eprintln!("step {step}: SIGKILL node {node} for {pause:?}, then restart");
                nodes[node].take().unwrap().kill();
                send_for(&producer, pause);
                nodes[node] = Some(cluster.spawn(node).listening());
            }
            1 => {
                eprintln!("step {step}: SIGSTOP node {node} for {pause:?}, then SIGCONT");
                nodes[node].as_ref().unwrap().signal(libc::SIGSTOP);
                send_for(&producer, pause);
                nodes[node].as_ref().unwrap().signal(libc::SIGCONT);
            }
            _ => {
                eprintln!("step {step}: no fault for {pause:?}");
                send_for(&producer, pause);
            }
        }
        // One fault at a time: the quorum keeps its majority. New writes pause meanwhile,
        // so a follower on a starved machine (CI runs a JVM beside this) can catch up and
        // rejoin; the producer's unacknowledged messages are still retried.
        let deadline = Instant::now() + Duration::from_secs(60);
        while all_in_sync(&nodes).is_none() {
            assert!(
                Instant::now() < deadline,
                "step {step}: not back in sync (seed {seed})"
            );
            producer.poll(Duration::from_millis(100));
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    assert_eq!(
        acked.failed.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "seed {seed}: every message acknowledged in the end"
    );
    let acked = acked.delivered();
    assert_eq!(acked.len(), sent);
    // Restarted nodes listen on new ports (the tests' brokers take ephemeral ones).
    let all: String = (0..3)
        .map(|n| address(&nodes, n))
        .collect::<Vec<_>>()
        .join(",");
    // A consumer may read some offsets twice across leader changes: count distinct ones.
    let at = read_distinct(&all, PARTITIONS, sent);
    if at.len() != sent {
        // What the next person needs to find why: per partition, what was acknowledged
        // and read, and how each node sees the partitions now.
        for partition in 0..PARTITIONS {
            let acked_here = acked.iter().filter(|(p, _, _)| *p == partition).count();
            let read_here = at.keys().filter(|(p, _)| *p == partition).count();
            let last_read = at
                .keys()
                .filter(|(p, _)| *p == partition)
                .map(|(_, o)| *o)
                .max();
            eprintln!(
                "seed {seed}: partition {partition}: {acked_here} acknowledged, {read_here} read, last read offset {last_read:?}"
            );
            // Ask every node's broker directly from where reading stopped: its high
            // watermark and how many bytes it returns (or its error).
            let next = last_read.map_or(0, |offset| offset + 1);
            for (node, broker) in nodes.iter().enumerate() {
                let Some(broker) = broker.as_ref() else {
                    continue;
                };
                let mut client = RawClient::connect(&broker.core_address(0));
                let (error_code, high_watermark, bytes) = fetch_at(&mut client, partition, next);
                eprintln!(
                    "seed {seed}: partition {partition} fetched at {next} from node {node}: error {}, high watermark {}, {} bytes",
                    error_code, high_watermark, bytes
                );
                // And what its files hold (written, whatever the watermarks say).
                let files = Command::new(env!("CARGO_BIN_EXE_spindle"))
                    .args(["dump-log", "--dir"])
                    .arg(cluster.dirs[node].join(format!("{TOPIC}-{partition}")))
                    .output()
                    .expect("dump-log");
                let text = String::from_utf8_lossy(&files.stdout);
                let last: Vec<&str> = text.lines().rev().take(3).collect();
                eprintln!("seed {seed}: node {node}'s files for partition {partition}: {last:?}");
            }
        }
        for node in 0..3 {
            let response = metadata(&address(&nodes, node));
            for topic in response
                .topics
                .iter()
                .filter(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
            {
                for p in &topic.partitions {
                    eprintln!(
                        "seed {seed}: node {node} sees partition {} led by {} (epoch {}), in sync {:?}",
                        p.partition_index,
                        p.leader_id.0,
                        p.leader_epoch,
                        p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
    assert_eq!(
        at.len(),
        sent,
        "seed {seed}: every acknowledged message, once"
    );
    check_acknowledged(&format!("seed {seed}"), &acked, &at);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, rewritten) = reader.join().expect("reader");
    assert!(
        rewritten.is_empty(),
        "seed {seed}: offsets read with two contents: {rewritten:?}"
    );
    for (position, value) in &seen {
        assert_eq!(
            at.get(position),
            Some(value),
            "seed {seed}: read {position:?} that is not in the log"
        );
    }
    eprintln!(
        "seed {seed}: {sent} acknowledged, {} read during the faults",
        seen.len()
    );
}

/// Every acknowledged message is read at the offset it was acknowledged with. librdkafka
/// acknowledges a message "implicitly", with no offset (-1001), when the answer to its
/// request was lost but a later batch of the same producer was answered (the broker's
/// sequence checks prove it was written): those are found once by value instead.
fn check_acknowledged(
    context: &str,
    acked: &[(i32, i64, String)],
    at: &BTreeMap<(i32, i64), String>,
) {
    let mut values_at: BTreeMap<(i32, &str), usize> = BTreeMap::new();
    for ((partition, _), value) in at {
        *values_at.entry((*partition, value.as_str())).or_default() += 1;
    }
    let mut implicit = 0;
    for (partition, offset, value) in acked {
        if *offset < 0 {
            implicit += 1;
            assert_eq!(
                values_at.get(&(*partition, value.as_str())),
                Some(&1),
                "{context}: {value} (acknowledged without an offset) once in {partition}"
            );
        } else {
            assert_eq!(
                at.get(&(*partition, *offset)),
                Some(value),
                "{context}: {partition}:{offset}"
            );
        }
    }
    if implicit > 0 {
        eprintln!("{context}: {implicit} acknowledged without an offset, each found once");
    }
}

/// Reads `topic` from the start until `expected` distinct offsets arrived (or 60 s):
/// `(partition, offset) -> value`; an offset read twice with two values fails.
fn read_distinct(
    bootstrap: &str,
    partitions: i32,
    expected: usize,
) -> BTreeMap<(i32, i64), String> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "distinct-reader-unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(TOPIC, partition, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            let at = (message.partition(), message.offset());
            if let Some(before) = out.insert(at, value.clone()) {
                assert_eq!(before, value, "{at:?} read with two contents");
            }
        }
    }
    out
}

/// Creates `TOPIC` with three replicas and `min.insync.replicas`, through `address`.
pub(crate) fn create_replicated(address: &str, partitions: i32, min_insync: usize) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", address)
            .create()
            .expect("admin");
    let min_insync = min_insync.to_string();
    let results = futures_lite::future::block_on(
        admin.create_topics(
            &[rdkafka::admin::NewTopic::new(
                TOPIC,
                partitions,
                rdkafka::admin::TopicReplication::Fixed(3),
            )
            .set("min.insync.replicas", &min_insync)],
            &rdkafka::admin::AdminOptions::new(),
        ),
    )
    .expect("create");
    results[0].as_ref().expect("created");
}

/// Three nodes that fence a silent node after 1 s and drop a follower lagging 2 s, started
/// and all registered.
pub(crate) fn fast_failing_cluster(root: &std::path::Path) -> (Cluster, Vec<Option<Broker>>) {
    let mut cluster = Cluster::new(root, 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = vec!["--replica-lag-time-max-ms".into(), "2000".into()];
    let nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let first = nodes[0].as_ref().unwrap().bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&first).brokers.len() == 3).then_some(())
    });
    (cluster, nodes)
}
