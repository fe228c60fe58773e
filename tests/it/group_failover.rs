//! Committed offsets survive the loss of their coordinator's node (issue 13). In a cluster
//! a group's records live in the replicated `__consumer_offsets` partition its id hashes
//! to, and its coordinator is that partition's leader: when the leader's node is killed,
//! a broker of another node coordinates the group, with every offset committed before the
//! kill. Checked with librdkafka: a simple commit, then a subscribed consumer of the group
//! that must start where the group left off.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::cluster::{Cluster, create_topic, metadata, wait_for};
use crate::common::{Broker, RawClient, temp_dir};
use crate::min_insync::produce;

const TOPIC: &str = "ledger";
const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 20;
const GROUP: &str = "ledger-readers";

/// `(error code, coordinator broker id)` for `group`, asked of `address`.
fn coordinator(address: &str, group: &str) -> (i16, i32) {
    let mut client = RawClient::connect(address);
    let response: FindCoordinatorResponse = client.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
    );
    (response.error_code, response.node_id.0)
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer")
}

/// The group's committed offset of each partition, as a new client reads them.
fn committed(bootstrap: &str) -> BTreeMap<i32, i64> {
    let mut wanted = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        wanted.add_partition(TOPIC, partition);
    }
    let listed = consumer(bootstrap)
        .committed_offsets(wanted, Duration::from_secs(20))
        .expect("committed offsets");
    listed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

fn commit(bootstrap: &str, offsets: &BTreeMap<i32, i64>) {
    let mut list = TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        list.add_partition_offset(TOPIC, partition, Offset::Offset(offset))
            .unwrap();
    }
    consumer(bootstrap)
        .commit(&list, CommitMode::Sync)
        .expect("commit");
}

#[test]
fn a_group_keeps_its_committed_offsets_when_its_coordinators_node_is_killed() {
    let root = temp_dir("group-failover");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let bootstrap_without = |nodes: &[Option<Broker>], skip: usize| -> String {
        nodes
            .iter()
            .enumerate()
            .filter(|(node, broker)| *node != skip && broker.is_some())
            .map(|(_, broker)| broker.as_ref().unwrap().bootstrap.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    let first = nodes[0].as_ref().unwrap().bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&first).brokers.len() == 3).then_some(())
    });
    create_topic(&first, TOPIC, PARTITIONS, 3).expect("create");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_without(&nodes, usize::MAX))
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for partition in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            let value = format!("{partition}-{i}");
            producer
                .send(
                    BaseRecord::<(), str>::to(TOPIC)
                        .partition(partition)
                        .payload(&value),
                )
                .expect("queued");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");

    // The first lookup creates `__consumer_offsets` (RF 3); the group's coordinator is the
    // leader of its partition there.
    let (_, coordinator_broker) = wait_for("a coordinator", || {
        let (error, broker) = coordinator(&first, GROUP);
        (error == 0).then_some((error, broker))
    });
    // The internal topic is marked so, and only coordinators write to it.
    let internal = metadata(&first)
        .topics
        .into_iter()
        .find(|topic| topic.name.as_ref().map(|n| n.as_str()) == Some("__consumer_offsets"))
        .expect("__consumer_offsets listed");
    assert!(internal.is_internal);
    assert_eq!(
        produce(&mut RawClient::connect(&first), "__consumer_offsets", 1),
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    let killed = (coordinator_broker / 1000) as usize;
    let before: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 5 + i64::from(p))).collect();
    commit(&bootstrap_without(&nodes, killed), &before);
    assert_eq!(committed(&bootstrap_without(&nodes, usize::MAX)), before);

    // SIGKILL the coordinator's node: once it is fenced, a broker of a live node leads the
    // group's partition and coordinates the group, with its offsets.
    let killed_at = Instant::now();
    nodes[killed].take().unwrap().kill();
    let survivor = bootstrap_without(&nodes, killed);
    let survivor_address = survivor.split(',').next().unwrap().to_string();
    let (_, moved_to) = wait_for("the group's coordinator moved", || {
        let (error, broker) = coordinator(&survivor_address, GROUP);
        (error == 0 && broker / 1000 != killed as i32).then_some((error, broker))
    });
    eprintln!(
        "group coordinator moved from broker {coordinator_broker} to {moved_to} in {:?}",
        killed_at.elapsed()
    );
    assert_eq!(committed(&survivor), before);

    // A member of the group starts where the group left off, on every partition.
    let member = consumer(&survivor);
    member.subscribe(&[TOPIC]).expect("subscribe");
    let mut first_read: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while first_read.len() < PARTITIONS as usize && Instant::now() < deadline {
        if let Some(Ok(message)) = member.poll(Duration::from_millis(100)) {
            first_read
                .entry(message.partition())
                .or_insert(message.offset());
        }
    }
    assert_eq!(
        first_read, before,
        "where the group's member started reading"
    );
    drop(member);

    // Commits go on through the new coordinator and, once the node is back, every node's
    // answer is the latest.
    let after: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 15 + i64::from(p))).collect();
    commit(&survivor, &after);
    nodes[killed] = Some(cluster.spawn(killed).listening());
    let all = bootstrap_without(&nodes, usize::MAX);
    wait_for("the restarted node registered", || {
        (metadata(&survivor_address).brokers.len() == 3).then_some(())
    });
    assert_eq!(committed(&all), after);
    let restarted = nodes[killed].as_ref().unwrap().bootstrap.clone();
    assert_eq!(committed(&restarted), after);
}
