//! Leader epochs (issue 13, KIP-101/279/320): a replica whose log diverged from the
//! leader's (it led, was cut off, and took batches nobody else has) cuts that tail back to
//! where its log and the new leader's agree before it copies anything, so every replica
//! ends up holding the leader's log byte for byte.

use std::time::Duration;

use crate::cluster::{read_all, wait_for};
use crate::common::{Broker, RawClient, temp_dir};
use crate::leader_epoch_fencing::{
    FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, end_of_epoch, fetch_error, list_offsets_error,
};
use crate::replication::{
    TOPIC, create_replicated, dump, fast_failing_cluster, in_sync, produce, produce_once_leading,
};

#[test]
fn a_returning_leader_cuts_its_divergent_tail_back_to_the_new_leaders_log() {
    let root = temp_dir("replication-divergence");
    let (cluster, mut nodes) = fast_failing_cluster(root.path());
    let address =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    create_replicated(&address(&nodes, 0), 1, 1);
    let (_, leader) = wait_for("three in sync", || {
        let (isr, leader) = in_sync(&address(&nodes, 0));
        (isr.len() == 3).then_some((isr, leader))
    });
    let old = (leader / 1000) as usize;
    let followers: Vec<usize> = (0..3).filter(|&node| node != old).collect();
    let mut client = RawClient::connect(&nodes[old].as_ref().unwrap().core_address(0));
    for i in 0..5 {
        assert_eq!(
            produce(&mut client, 0, &format!("both-{i}"), -1, 10_000),
            (0, i)
        );
    }
    wait_for("the followers hold the first five", || {
        let mut probe = RawClient::connect(&nodes[old].as_ref().unwrap().core_address(0));
        (crate::replication::consumer_fetch(&mut probe, 0, 0).0 == 5).then_some(())
    });

    // The followers paused, the leader alone takes three batches (acks=1), then dies.
    for &node in &followers {
        nodes[node].as_ref().unwrap().signal(libc::SIGSTOP);
    }
    for i in 0..3 {
        assert_eq!(
            produce(&mut client, 0, &format!("divergent-{i}"), 1, 10_000),
            (0, 5 + i)
        );
    }
    drop(client);
    nodes[old].take().unwrap().kill();
    for &node in &followers {
        nodes[node].as_ref().unwrap().signal(libc::SIGCONT);
    }

    // A follower takes over in a new epoch and writes other batches at those offsets.
    let new_leader = wait_for("a new leader", || {
        let (_, leader) = in_sync(&address(&nodes, followers[0]));
        (leader >= 0 && leader / 1000 != old as i32).then_some(leader)
    });
    let new = (new_leader / 1000) as usize;
    // The followers' long-polls may have carried the first of the three away before the
    // pause took hold; the other two exist only on the old leader.
    let mut client = RawClient::connect(&nodes[new].as_ref().unwrap().core_address(0));
    let next = produce_once_leading(&mut client, 0, "new-0");
    assert!(
        (5..=6).contains(&next),
        "the new leader's log ends at {next}"
    );
    // OffsetForLeaderEpoch (KIP-320): epoch 0 ends where the new leader's epoch began, and
    // a caller still naming epoch 0 as the current one is fenced.
    assert_eq!(end_of_epoch(&mut client, TOPIC, 4, 0, -1), (0, 0, next));
    assert_eq!(
        end_of_epoch(&mut client, TOPIC, 4, 0, 0).0,
        74,
        "FENCED_LEADER_EPOCH"
    );
    // ListOffsets names the epoch that wrote each offset it answers: the new one for the
    // latest, 0 for the earliest.
    let latest_epoch = listed_epoch(&mut client, -1);
    assert!(latest_epoch >= 1, "latest offset in epoch {latest_epoch}");
    assert_eq!(
        end_of_epoch(&mut client, TOPIC, 4, latest_epoch, latest_epoch).0,
        0
    );
    // Fetch and ListOffsets fence a caller naming the replaced leader's epoch, and a
    // follower still naming it (its fetch would otherwise count as caught up here).
    let other = followers
        .iter()
        .find(|&&node| node != new)
        .copied()
        .unwrap();
    let topic_id = uuid::Uuid::nil();
    for (current, expected) in [
        (0, FENCED_LEADER_EPOCH),
        (latest_epoch, 0),
        (latest_epoch + 1, UNKNOWN_LEADER_EPOCH),
    ] {
        assert_eq!(
            fetch_error(&mut client, (TOPIC, topic_id), 12, current, -1),
            expected,
            "a consumer's Fetch naming epoch {current}"
        );
        assert_eq!(
            list_offsets_error(&mut client, TOPIC, 4, current),
            expected,
            "ListOffsets naming epoch {current}"
        );
        assert_eq!(
            fetch_error(
                &mut client,
                (TOPIC, topic_id),
                12,
                current,
                other as i32 * 1000
            ),
            expected,
            "a follower's Fetch naming epoch {current}"
        );
    }
    assert_eq!(listed_epoch(&mut client, -2), 0);
    for i in 1..6 {
        assert_eq!(
            produce(&mut client, 0, &format!("new-{i}"), -1, 10_000),
            (0, next + i)
        );
    }

    // The old leader returns: it must drop what only it holds, not keep it under the new
    // leader's batches.
    nodes[old] = Some(cluster.spawn(old).listening());
    wait_for("all three in sync again", || {
        let (isr, leader) = in_sync(&address(&nodes, new));
        (isr.len() == 3 && leader == new_leader).then_some(())
    });
    assert_eq!(produce(&mut client, 0, "last", -1, 10_000), (0, next + 6));
    drop(client);
    let expected: Vec<String> = (0..5)
        .map(|i| format!("both-{i}"))
        .chain((0..next - 5).map(|i| format!("divergent-{i}")))
        .chain((0..6).map(|i| format!("new-{i}")))
        .chain(["last".to_string()])
        .collect();
    let values: Vec<String> = read_all(&address(&nodes, new), TOPIC, 1, expected.len())
        .into_iter()
        .map(|(_, _, _, value)| value)
        .collect();
    assert_eq!(values, expected);
    std::thread::sleep(Duration::from_millis(500));
    for node in nodes.into_iter().flatten() {
        assert!(node.stop().success());
    }
    let copies: Vec<String> = cluster
        .dirs
        .iter()
        .map(|dir| dump(&dir.join(format!("{TOPIC}-0"))))
        .collect();
    assert_eq!(copies[old], copies[new], "the returned leader's copy");
    assert_eq!(copies[followers[0]], copies[followers[1]]);
}

/// The leader epoch ListOffsets v4 gives with partition 0's offset at `timestamp`.
fn listed_epoch(client: &mut RawClient, timestamp: i64) -> i32 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{
        ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName,
    };
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str(TOPIC),
                ))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 4, &request);
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.error_code, 0);
    answer.leader_epoch
}
