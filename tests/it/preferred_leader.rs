//! Leadership returns to the preferred replicas (issue 13; Kafka's
//! `auto.leader.rebalance.enable`). A node killed and restarted gets no leadership back
//! by itself: the partitions it led moved to other replicas at the failover. Once it is in
//! sync again, the quorum's leader moves each of them back to it, so the load spreads over
//! the nodes as placed, and they serve as before.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::cluster::{Cluster, create_topic, leaders, metadata, read_all, wait_for};
use crate::common::{Broker, temp_dir};

const TOPIC: &str = "spread";
const PARTITIONS: i32 = 3;

#[test]
fn a_restarted_node_leads_its_preferred_partitions_again_once_in_sync() {
    let root = temp_dir("preferred-leader");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = vec!["--leader-imbalance-check-interval-ms".into(), "500".into()];
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let address = |nodes: &[Option<Broker>], node: usize| {
        nodes[node].as_ref().expect("running").bootstrap.clone()
    };
    wait_for("all registered", || {
        (metadata(&address(&nodes, 0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(&nodes, 0), TOPIC, PARTITIONS, 3).expect("create");
    let placed = wait_for("the topic placed", || {
        let seen = leaders(&address(&nodes, 0), TOPIC);
        (seen.len() == PARTITIONS as usize).then_some(seen)
    });
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
