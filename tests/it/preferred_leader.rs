//! Leadership returns to the preferred replicas (issue 13; Kafka's
//! `auto.leader.rebalance.enable`). A node killed and restarted gets no leadership back
//! by itself: the partitions it led moved to other replicas at the failover. Once it is in
//! sync again, the quorum's leader moves each of them back to it, so the load spreads over
//! the nodes as placed, and they serve as before.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::cluster::{Cluster, create_topic, elect_leaders, leaders, metadata, read_all, wait_for};
use crate::common::{Broker, temp_dir};

const TOPIC: &str = "spread";
const PARTITIONS: i32 = 3;

fn address(nodes: &[Option<Broker>], node: usize) -> String {
    nodes[node].as_ref().expect("running").bootstrap.clone()
}

/// Three nodes (session timeout 1 s, `extra_args`) and the topic placed over them:
/// `(cluster, nodes, partition -> leader)`.
fn start_with_topic(
    root: &std::path::Path,
    extra_args: &[&str],
) -> (Cluster, Vec<Option<Broker>>, BTreeMap<i32, i32>) {
    let mut cluster = Cluster::new(root, 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = extra_args.iter().map(|arg| arg.to_string()).collect();
    let nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    wait_for("all registered", || {
        (metadata(&address(&nodes, 0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(&nodes, 0), TOPIC, PARTITIONS, 3).expect("create");
    let placed = wait_for("the topic placed", || {
        let seen = leaders(&address(&nodes, 0), TOPIC);
        (seen.len() == PARTITIONS as usize).then_some(seen)
    });
    (cluster, nodes, placed)
}

#[test]
fn a_restarted_node_leads_its_preferred_partitions_again_once_in_sync() {
    let root = temp_dir("preferred-leader");
    let (cluster, mut nodes, placed) = start_with_topic(
        root.path(),
        &["--leader-imbalance-check-interval-ms", "500"],
    );
    let on_node_2: Vec<i32> = placed
        .iter()
        .filter(|(_, leader)| **leader / 1000 == 2)
        .map(|(partition, _)| *partition)
        .collect();
    assert_eq!(on_node_2.len(), 1, "one leader per node: {placed:?}");

    nodes[2].take().expect("running").kill();
    let failed_over: BTreeMap<i32, i32> = wait_for("node 2's partition led elsewhere", || {
        let seen = leaders(&address(&nodes, 0), TOPIC);
        (seen.len() == PARTITIONS as usize && seen.values().all(|leader| leader / 1000 != 2))
            .then_some(seen)
    });
    assert_ne!(failed_over, placed);

    // Restarted: it catches up, rejoins the in-sync sets, and leads its partition again.
    nodes[2] = Some(cluster.spawn(2).listening());
    wait_for("the placement back", || {
        (leaders(&address(&nodes, 0), TOPIC) == placed).then_some(())
    });
    for node in 0..3 {
        assert_eq!(
            leaders(&address(&nodes, node), TOPIC),
            placed,
            "node {node}"
        );
    }

    // And every partition takes and serves acks=all writes under its preferred leader.
    let all: String = (0..3)
        .map(|node| address(&nodes, node))
        .collect::<Vec<_>>()
        .join(",");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &all)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for i in 0..30 {
        let value = i.to_string();
        producer
            .send(
                BaseRecord::<(), str>::to(TOPIC)
                    .partition(i % PARTITIONS)
                    .payload(&value),
            )
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
    let read = read_all(&all, TOPIC, PARTITIONS, 30);
    assert_eq!(read.len(), 30);
}

/// ElectLeaders (preferred): `(topic, partition) -> error code`.
fn elect_preferred(
    address: &str,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> BTreeMap<(String, i32), i16> {
    elect_leaders(address, 0, topics)
}

#[test]
fn elect_leaders_moves_partitions_back_on_request() {
    let root = temp_dir("elect-leaders");
    let (cluster, mut nodes, placed) =
        start_with_topic(root.path(), &["--auto-leader-rebalance-enable", "false"]);
    let (&moved, _) = placed
        .iter()
        .find(|(_, leader)| **leader / 1000 == 2)
        .expect("a partition led by node 2");
    // Nothing to do while every preferred replica leads; an unknown partition is named.
    let answers = elect_preferred(&address(&nodes, 0), Some(vec![(TOPIC, vec![moved, 7])]));
    assert_eq!(
        answers[&(TOPIC.to_string(), moved)],
        84,
        "ELECTION_NOT_NEEDED"
    );
    assert_eq!(
        answers[&(TOPIC.to_string(), 7)],
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    nodes[2].take().expect("running").kill();
    wait_for("node 2's partition led elsewhere", || {
        let seen = leaders(&address(&nodes, 0), TOPIC);
        (seen.get(&moved).is_some_and(|leader| leader / 1000 != 2)).then_some(())
    });
    // Its preferred replica is down: not available.
    let answers = elect_preferred(&address(&nodes, 1), None);
    assert_eq!(
        answers[&(TOPIC.to_string(), moved)],
        80,
        "PREFERRED_LEADER_NOT_AVAILABLE"
    );

    // Back and in sync, but the automatic rebalance is off: it moves only when asked.
    nodes[2] = Some(cluster.spawn(2).listening());
    let answers = wait_for("node 2 in sync and elected", || {
        let answers = elect_preferred(&address(&nodes, 0), None);
        (answers[&(TOPIC.to_string(), moved)] == 0).then_some(answers)
    });
    for (partition, _) in placed.iter().filter(|(p, _)| **p != moved) {
        assert_eq!(answers[&(TOPIC.to_string(), *partition)], 84);
    }
    wait_for("the placement back", || {
        (leaders(&address(&nodes, 1), TOPIC) == placed).then_some(())
    });
}
