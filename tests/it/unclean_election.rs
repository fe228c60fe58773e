//! Unclean leader election (issue 16; Kafka's `kafka-leader-election.sh --election-type
//! unclean`): a partition whose in-sync replicas are all down stays leaderless, as Kafka
//! keeps it, until an operator asks for an unclean election. Then a live replica out of
//! sync leads, what only the lost leader held is gone, the partition serves again, and the
//! old leader, back, follows and cuts what it alone held. The cluster-wide dynamic broker
//! config `unclean.leader.election.enable` does the same for every topic without its own.

use std::path::Path;
use std::time::Duration;

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{
    Cluster, create_assigned_topic, elect_leaders, metadata, partition_metadata, produce_values,
    read_all, wait_for,
};
use crate::common::{Broker, RawClient, temp_dir};

const TOPIC: &str = "unclean";

/// `(leader, in-sync replicas)` of partition 0 as `address` reports it.
fn leader_and_isr(address: &str) -> Option<(i32, Vec<i32>)> {
    partition_metadata(address, TOPIC, 0).map(|p| {
        (
            p.leader_id.0,
            p.isr_nodes.iter().map(|broker| broker.0).collect(),
        )
    })
}

fn produce(bootstrap: &str, acks: &str, values: &[&str]) {
    produce_values(bootstrap, TOPIC, acks, values);
}

fn address(nodes: &[Option<Broker>], node: usize) -> String {
    nodes[node].as_ref().expect("running").bootstrap.clone()
}

fn values(read: &[(i32, i64, String, String)]) -> Vec<&str> {
    read.iter().map(|(_, _, _, value)| value.as_str()).collect()
}

/// Three nodes, and the topic's one partition (led by node 1, followed by node 2) left
/// without a leader: its leader and only in-sync replica down, the follower back out of
/// sync. Node 1 held two records (`lost-*`) that node 2 never had.
fn leaderless_partition(root: &Path) -> (Cluster, Vec<Option<Broker>>) {
    let mut cluster = Cluster::new(root, 3);
    cluster.session_timeout_ms = Some(1000);
    cluster.extra_args = ["--replica-lag-time-max-ms", "1000"]
        .map(String::from)
        .to_vec();
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    wait_for("all registered", || {
        (metadata(&address(&nodes, 0)).brokers.len() == 3).then_some(())
    });
    // Led by node 1, followed by node 2; node 0 holds no replica and keeps the quorum.
    create_assigned_topic(&address(&nodes, 0), TOPIC, &[&[1000, 2000]], &[]);
    wait_for("both replicas in sync", || {
        (leader_and_isr(&address(&nodes, 0))? == (1000, vec![1000, 2000])).then_some(())
    });
    // While a leader is live there is nothing to elect.
    let answers = elect_leaders(&address(&nodes, 0), 1, Some(vec![(TOPIC, vec![0, 5])]));
    assert_eq!(answers[&(TOPIC.to_string(), 0)], 84, "ELECTION_NOT_NEEDED");
    assert_eq!(
        answers[&(TOPIC.to_string(), 5)],
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    let both = format!("{},{}", address(&nodes, 0), address(&nodes, 1));
    produce(&both, "all", &["kept-1", "kept-2", "kept-3"]);
    // The follower goes: the leader alone is in sync, and takes more on its own.
    nodes[2].take().expect("running").kill();
    wait_for("node 2 out of the in-sync set", || {
        (leader_and_isr(&address(&nodes, 0))?.1 == vec![1000]).then_some(())
    });
    produce(&both, "1", &["lost-1", "lost-2"]);
    // Then the leader goes too, and the follower, out of sync, comes back: no clean
    // election is possible, and the partition stays leaderless.
    nodes[1].take().expect("running").kill();
    nodes[2] = Some(cluster.spawn(2).listening());
    wait_for("the partition leaderless", || {
        (leader_and_isr(&address(&nodes, 0))?.0 == -1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        leader_and_isr(&address(&nodes, 2)).map(|(leader, _)| leader),
        Some(-1),
        "no unclean election unless asked"
    );
    (cluster, nodes)
}

#[test]
fn an_unclean_election_brings_a_partition_without_in_sync_replicas_back() {
    let root = temp_dir("unclean-election");
    let (cluster, mut nodes) = leaderless_partition(root.path());
    let answers = elect_leaders(&address(&nodes, 2), 1, Some(vec![(TOPIC, vec![0])]));
    assert_eq!(answers[&(TOPIC.to_string(), 0)], 0, "elected");
    wait_for("node 2 leading alone", || {
        (leader_and_isr(&address(&nodes, 0))? == (2000, vec![2000])).then_some(())
    });
    let live = format!("{},{}", address(&nodes, 0), address(&nodes, 2));
    produce(&live, "all", &["after-1", "after-2"]);
    let read = read_all(&live, TOPIC, 1, 5);
    assert_eq!(
        values(&read),
        ["kept-1", "kept-2", "kept-3", "after-1", "after-2"],
        "what only the old leader held is gone"
    );

    // The old leader, back, follows the new one and cuts what it alone held.
    nodes[1] = Some(cluster.spawn(1).listening());
    wait_for("node 1 in sync again", || {
        let (leader, mut isr) = leader_and_isr(&address(&nodes, 0))?;
        isr.sort();
        (leader == 2000 && isr == [1000, 2000]).then_some(())
    });
    let everyone = format!("{live},{}", address(&nodes, 1));
    produce(&everyone, "all", &["last"]);
    let read = read_all(&everyone, TOPIC, 1, 6);
    assert_eq!(
        values(&read),
        ["kept-1", "kept-2", "kept-3", "after-1", "after-2", "last"]
    );
}

#[test]
fn the_cluster_wide_dynamic_default_elects_a_waiting_partition() {
    let root = temp_dir("unclean-default");
    let (_cluster, nodes) = leaderless_partition(root.path());
    // kafka-configs --entity-type brokers --entity-default --alter --add-config
    // unclean.leader.election.enable=true, through the node that came back.
    let mut client = RawClient::connect(&address(&nodes, 2));
    let response: IncrementalAlterConfigsResponse = client.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str(""))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_static_str("unclean.leader.election.enable"))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_static_str("true"))),
                ]),
        ]),
    );
    assert_eq!(response.responses[0].error_code, 0);
    wait_for("node 2 leading alone", || {
        (leader_and_isr(&address(&nodes, 0))? == (2000, vec![2000])).then_some(())
    });
    let live = format!("{},{}", address(&nodes, 0), address(&nodes, 2));
    produce(&live, "all", &["after"]);
    let read = read_all(&live, TOPIC, 1, 4);
    assert_eq!(values(&read), ["kept-1", "kept-2", "kept-3", "after"]);
}
