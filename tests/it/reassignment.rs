//! Partition reassignment (issue 16; `kafka-reassign-partitions.sh`, AdminClient's
//! alterPartitionReassignments): a partition moves to other nodes while it serves. The new
//! replicas copy the leader, the old ones go once the new ones are in sync (their data
//! deleted), leadership moves to the first replica asked for, and nothing acknowledged is
//! lost, even when the log no longer starts at 0. A move that cannot finish is listed as
//! under way and can be cancelled. The admin CLI's `cluster partitions` verbs do the same.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::cluster::{
    Cluster, create_assigned_topic, metadata, partition_metadata, produce_values, read_all,
    wait_for,
};
use crate::common::{Broker, RawClient, spindle_cli, spindle_cli_ok, temp_dir, topic_name};
use crate::delete_records::delete_before;

const TOPIC: &str = "moving";

/// Moves (or, with `None`, cancels the move of) partition 0: its error code. Asked again
/// after REQUEST_TIMED_OUT or NOT_CONTROLLER, as an admin client does: a change proposed
/// to a metadata quorum whose leader was just paused is answered NOT_CONTROLLER once
/// another leader is elected.
fn reassign(address: &str, replicas: Option<Vec<i32>>) -> i16 {
    for _ in 0..3 {
        let code = reassign_once(address, replicas.clone());
        if code != 7 && code != 41 {
            return code;
        }
    }
    panic!("the metadata quorum did not take the reassignment");
}

fn reassign_once(address: &str, replicas: Option<Vec<i32>>) -> i16 {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect())),
                ]),
        ]);
    let response: AlterPartitionReassignmentsResponse =
        RawClient::connect(address).call(ApiKey::AlterPartitionReassignments, 1, &request);
    assert_eq!(response.error_code, 0);
    response.responses[0].partitions[0].error_code
}

/// One move under way: `(replicas, adding, removing)`.
type Move = (Vec<i32>, Vec<i32>, Vec<i32>);

/// The moves under way, by partition.
fn under_way(address: &str) -> BTreeMap<i32, Move> {
    let response: ListPartitionReassignmentsResponse = RawClient::connect(address).call(
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_topics(None),
    );
    let ids = |brokers: &[BrokerId]| brokers.iter().map(|b| b.0).collect::<Vec<i32>>();
    response
        .topics
        .iter()
        .filter(|t| t.name.as_str() == TOPIC)
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                (
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                ),
            )
        })
        .collect()
}

/// `(leader, replicas, in-sync replicas)` of partition 0 as `address` reports it.
fn placement(address: &str) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    partition_metadata(address, TOPIC, 0).map(|p| {
        let ids = |brokers: &[BrokerId]| brokers.iter().map(|b| b.0).collect::<Vec<i32>>();
        let mut isr = ids(&p.isr_nodes);
        isr.sort();
        (p.leader_id.0, ids(&p.replica_nodes), isr)
    })
}

#[test]
fn a_partition_moves_to_other_nodes_while_serving_and_a_stuck_move_can_be_cancelled() {
    let root = temp_dir("reassignment");
    let mut cluster = Cluster::new(root.path(), 3);
    // Node 2 is paused below and must stay registered meanwhile.
    cluster.session_timeout_ms = Some(40_000);
    let nodes: Vec<Broker> = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    // Small segments, so DeleteRecords below removes whole ones.
    create_assigned_topic(
        &address(0),
        TOPIC,
        &[&[0, 1000]],
        &[("segment.bytes", "4096")],
    );
    let all = format!("{},{},{}", address(0), address(1), address(2));
    // 20 batches of 10 records of 400 bytes: about a segment each.
    let padding = "x".repeat(390);
    let before: Vec<String> = (0..200).map(|i| format!("before-{i}-{padding}")).collect();
    let before: Vec<&str> = before.iter().map(String::as_str).collect();
    for batch in before.chunks(10) {
        produce_values(&all, TOPIC, "all", batch);
    }
    // The log starts at 100 then, the segments below gone: a new replica copies from
    // there, taking the gap below.
    let (code, low_watermark) = delete_before(&mut RawClient::connect(&address(0)), 2, TOPIC, 100);
    assert_eq!((code, low_watermark), (0, 100));

    // Node 2 is silent (not yet fenced): a move onto it cannot finish. It is listed as
    // under way, and cancelled back to where it was.
    nodes[2].signal(libc::SIGSTOP);
    assert_eq!(reassign(&address(0), Some(vec![0, 1000, 2000])), 0);
    // Asked through node 0, read through node 1: node 1 learns of the commit a moment
    // after node 0 answers.
    let listed = wait_for("the move listed on node 1", || {
        let listed = under_way(&address(1));
        (!listed.is_empty()).then_some(listed)
    });
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (mut replicas, adding, removing) = listed[&0].clone();
    replicas.sort();
    assert_eq!(
        (replicas, adding, removing),
        (vec![0, 1000, 2000], vec![2000], vec![])
    );
    // The admin CLI shows it and cancels it.
    let (code, status, _) = spindle_cli(
        &address(0),
        &[
            "cluster",
            "partitions",
            "move-status",
            TOPIC,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(status[0]["partition"], 0, "{status}");
    assert_eq!(status[0]["adding"], serde_json::json!([2000]), "{status}");
    spindle_cli_ok(
        &address(1),
        &["cluster", "partitions", "move-cancel", TOPIC],
    );
    // Cancelled through node 1; node 0 applies the commit a moment later.
    wait_for("the cancel seen on node 0", || {
        under_way(&address(0)).is_empty().then_some(())
    });
    assert_eq!(
        placement(&address(0)),
        Some((0, vec![0, 1000], vec![0, 1000]))
    );
    assert_eq!(
        reassign(&address(0), None),
        85,
        "NO_REASSIGNMENT_IN_PROGRESS"
    );
    nodes[2].signal(libc::SIGCONT);

    // Off node 0 and onto node 2, led by node 2: the new replica copies from the log
    // start, then the old one goes with its data.
    let (code, _, stderr) = spindle_cli(
        &address(1),
        &[
            "cluster",
            "partitions",
            "move",
            TOPIC,
            "-p",
            "0:two-thousand",
        ],
    );
    assert_eq!(code, 2, "a bad argument: {stderr}");
    spindle_cli_ok(
        &address(1),
        &["cluster", "partitions", "move", TOPIC, "-p", "0:2000,1000"],
    );
    wait_for("the move done", || {
        (under_way(&address(0)).is_empty()
            && placement(&address(0))? == (2000, vec![2000, 1000], vec![1000, 2000]))
            .then_some(())
    });
    let old_replica = cluster.dirs[0].join(format!("{TOPIC}-0"));
    wait_for("node 0's copy deleted", || {
        (!old_replica.exists()).then_some(())
    });
    produce_values(&all, TOPIC, "all", &["after"]);
    let read = read_all(&address(2), TOPIC, 1, 101);
    let values: Vec<&str> = read.iter().map(|(_, _, _, v)| v.as_str()).collect();
    let mut expected = before[100..].to_vec();
    expected.push("after");
    assert_eq!(values, expected, "every record kept, in order");
    assert_eq!(read[0].1, 100, "offsets kept");
}
