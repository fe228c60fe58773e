//! The controller's decisions, as pure functions: topic changes, in-sync sets, failover.

use super::*;
use crate::cluster::control::{ConfigOp, TopicConfigChange};
use crate::cluster::topic_config::UNCLEAN_LEADER_ELECTION_ENABLE;

fn limits() -> ControllerLimits {
    ControllerLimits {
        nodes: vec![(0, 2)],
        default_partitions: 2,
        default_replication_factor: 1,
        unclean_election_default: false,
    }
}

fn apply_request(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    request: &ControllerRequest,
    limits: ControllerLimits,
) -> (
    Option<BTreeMap<String, Arc<TopicMetadata>>>,
    Vec<TopicOutcome>,
) {
    super::apply_request(topics, request, &limits, &mut new_topic_id)
}

fn new_topic(name: &str, partitions: i32) -> NewTopic {
    NewTopic {
        name: name.into(),
        partitions,
        replication_factor: -1,
        assignments: vec![],
        configs: vec![],
    }
}

fn create(topics: Vec<NewTopic>) -> ControllerRequest {
    ControllerRequest::CreateTopics {
        topics,
        validate_only: false,
    }
}

#[test]
fn create_then_duplicate_then_delete() {
    let (next, outcomes) = apply_request(
        &BTreeMap::new(),
        &create(vec![
            new_topic("a", 8),
            new_topic("b", -1),
            new_topic("bad name", 1),
        ]),
        limits(),
    );
    let topics = next.unwrap();
    assert_eq!(topics["a"].partition_count(), 8);
    assert_eq!(topics["b"].partition_count(), 2);
    assert_eq!(
        outcomes[2].result.as_ref().unwrap_err().0,
        ErrorCode::InvalidTopicException
    );
    let (next, outcomes) = apply_request(&topics, &create(vec![new_topic("a", 1)]), limits());
    assert!(next.is_none());
    assert_eq!(
        outcomes[0].result.as_ref().unwrap_err().0,
        ErrorCode::TopicAlreadyExists
    );
    let (next, _) = apply_request(
        &topics,
        &ControllerRequest::DeleteTopics {
            names: vec!["a".into()],
        },
        limits(),
    );
    assert!(!next.unwrap().contains_key("a"));
}

#[test]
fn bad_counts_factors_configs_and_assignments() {
    let mut topic = new_topic("t", 0);
    let check = |topic: &NewTopic, code: ErrorCode| {
        let (next, outcomes) =
            apply_request(&BTreeMap::new(), &create(vec![topic.clone()]), limits());
        assert!(next.is_none());
        assert_eq!(outcomes[0].result.as_ref().unwrap_err().0, code);
    };
    check(&topic, ErrorCode::InvalidPartitions);
    topic.partitions = 1;
    topic.replication_factor = 3;
    check(&topic, ErrorCode::InvalidReplicationFactor);
    topic.replication_factor = 1;
    topic.configs = vec![("retention.ms".into(), Some("soon".into()))];
    check(&topic, ErrorCode::InvalidConfig);
    topic.configs.clear();
    topic.partitions = -1;
    topic.replication_factor = -1;
    topic.assignments = vec![vec![5]];
    check(&topic, ErrorCode::InvalidReplicaAssignment);
    topic.assignments = vec![vec![1], vec![0]];
    let (next, _) = apply_request(&BTreeMap::new(), &create(vec![topic]), limits());
    assert_eq!(next.unwrap()["t"].partition_brokers, vec![1, 0]);
}

#[test]
fn partitions_only_grow_and_validate_only_changes_nothing() {
    let (topics, _) = apply_request(&BTreeMap::new(), &create(vec![new_topic("t", 2)]), limits());
    let topics = topics.unwrap();
    let grow = |count, validate_only| ControllerRequest::CreatePartitions {
        topics: vec![("t".into(), count, vec![])],
        validate_only,
    };
    let (next, outcomes) = apply_request(&topics, &grow(2, false), limits());
    assert!(next.is_none());
    assert_eq!(
        outcomes[0].result.as_ref().unwrap_err().0,
        ErrorCode::InvalidPartitions
    );
    let (next, outcomes) = apply_request(&topics, &grow(5, true), limits());
    assert!(next.is_none() && outcomes[0].result.is_ok());
    let (next, _) = apply_request(&topics, &grow(5, false), limits());
    let grown = &next.unwrap()["t"];
    assert_eq!(grown.partition_count(), 5);
    assert_eq!(grown.topic_id, topics["t"].topic_id);
}

#[test]
fn only_the_leader_alters_the_in_sync_set_and_only_to_its_replicas() {
    let (three, topics) = replicated_topic(1);
    let leader = topics["r"].partition_brokers[0];
    let followers = topics["r"].followers(0).to_vec();
    assert_eq!(topics["r"].isr(0).len(), 3, "every replica starts in sync");
    let alter = |leader, isr: Vec<u32>| ControllerRequest::AlterIsr {
        topic: "r".into(),
        partition: 0,
        leader,
        leader_epoch: 0,
        isr,
    };
    let code = |request| {
        let (next, outcomes) = super::apply_request(&topics, &request, &three, &mut new_topic_id);
        (next, outcomes[0].result.as_ref().err().map(|e| e.0))
    };
    assert_eq!(
        code(alter(followers[0], vec![followers[0]])).1,
        Some(ErrorCode::NotLeaderOrFollower)
    );
    assert_eq!(
        code(alter(leader, vec![followers[0]])).1,
        Some(ErrorCode::InvalidRequest),
        "the leader stays in"
    );
    assert_eq!(
        code(alter(leader, vec![leader, 4242])).1,
        Some(ErrorCode::InvalidRequest)
    );
    let (next, error) = code(alter(leader, vec![leader, followers[1]]));
    assert_eq!(error, None);
    let shrunk = next.unwrap();
    assert_eq!(shrunk["r"].isr(0), vec![leader, followers[1]]);

    // A replica on a fenced node (not among the live nodes) cannot come back in.
    let fenced_node = followers[0] / 1000;
    let live = ControllerLimits {
        nodes: three
            .nodes
            .iter()
            .copied()
            .filter(|&(node, _)| node != fenced_node)
            .collect(),
        ..three.clone()
    };
    let back = alter(leader, vec![leader, followers[1], followers[0]]);
    let (_, outcomes) = super::apply_request(&shrunk, &back, &live, &mut new_topic_id);
    assert_eq!(
        outcomes[0].result.as_ref().err().map(|e| e.0),
        Some(ErrorCode::IneligibleReplica)
    );
    let (_, outcomes) = super::apply_request(&shrunk, &back, &three, &mut new_topic_id);
    assert!(outcomes[0].result.is_ok(), "once its node is live again");
}

#[test]
fn a_fenced_leader_is_replaced_by_the_first_live_in_sync_replica() {
    let (_, topics) = replicated_topic(3);
    let before = topics["r"].clone();
    // Node 1 is fenced.
    let live = |broker: u32| broker / BROKERS_PER_NODE != 1;
    let after = &fail_over(&topics, live, false)["r"];
    for partition in 0..3 {
        let old_leader = before.partition_brokers[partition as usize];
        let new_leader = after.partition_brokers[partition as usize];
        assert!(live(new_leader));
        assert!(after.isr(partition).iter().all(|&b| live(b)));
        assert_eq!(after.isr(partition)[0], new_leader);
        let mut replicas: Vec<u32> = std::iter::once(new_leader)
            .chain(after.followers(partition).iter().copied())
            .collect();
        replicas.sort();
        let mut was: Vec<u32> = std::iter::once(old_leader)
            .chain(before.followers(partition).iter().copied())
            .collect();
        was.sort();
        assert_eq!(replicas, was, "the replicas stay the same");
        let moved = !live(old_leader);
        assert_eq!(after.leader_epoch(partition), i32::from(moved));
        assert_eq!(new_leader != old_leader, moved);
    }
    // Nobody live in sync: the partition keeps its leader and waits.
    let nobody = fail_over(&topics, |_| false, false);
    assert!(
        nobody
            .get("r")
            .is_none_or(|t| t.partition_brokers == before.partition_brokers)
    );
}

#[test]
fn leadership_returns_to_the_preferred_replica_once_it_is_live_and_in_sync() {
    let (_, topics) = replicated_topic(3);
    let placed = topics["r"].partition_brokers.clone();
    assert!(
        super::elect_preferred_leaders(&topics, |_| true).is_empty(),
        "every partition is led by its preferred replica"
    );
    // Node 1 fails: its partition moves, and it leaves every in-sync set.
    let down = |broker: u32| broker / BROKERS_PER_NODE != 1;
    let mut failed = topics.clone();
    failed.extend(fail_over(&topics, down, false));
    let moved: Vec<usize> = (0..3)
        .filter(|&index| failed["r"].partition_brokers[index] != placed[index])
        .collect();
    assert_eq!(moved.len(), 1, "{placed:?}");
    let index = moved[0];
    assert_eq!(
        failed["r"].preferred_leader(index as i32),
        Some(placed[index])
    );
    // Back but not yet in sync: it waits.
    assert!(super::elect_preferred_leaders(&failed, |_| true).is_empty());
    // In sync again: it leads again, in the next epoch, with the same replicas.
    let mut caught_up = (*failed["r"]).clone();
    caught_up.partition_isr[index].push(placed[index]);
    let caught_up = BTreeMap::from([("r".to_string(), Arc::new(caught_up))]);
    assert!(
        super::elect_preferred_leaders(&caught_up, down).is_empty(),
        "not while its node is fenced"
    );
    let elected = &super::elect_preferred_leaders(&caught_up, |_| true)["r"];
    assert_eq!(elected.partition_brokers, placed);
    assert_eq!(
        elected.leader_epoch(index as i32),
        failed["r"].leader_epoch(index as i32) + 1
    );
    let mut replicas: Vec<u32> = std::iter::once(placed[index])
        .chain(elected.followers(index as i32).iter().copied())
        .collect();
    replicas.sort();
    let mut was: Vec<u32> = std::iter::once(placed[index])
        .chain(topics["r"].followers(index as i32).iter().copied())
        .collect();
    was.sort();
    assert_eq!(replicas, was);
}

/// Three one-core nodes and topic "r" with `partitions` partitions, three replicas each.
fn replicated_topic(partitions: i32) -> (ControllerLimits, BTreeMap<String, Arc<TopicMetadata>>) {
    let three = ControllerLimits {
        nodes: vec![(0, 1), (1, 1), (2, 1)],
        default_partitions: partitions,
        default_replication_factor: 3,
        unclean_election_default: false,
    };
    let mut topic = new_topic("r", partitions);
    topic.replication_factor = 3;
    let (topics, _) = super::apply_request(
        &BTreeMap::new(),
        &create(vec![topic]),
        &three,
        &mut new_topic_id,
    );
    (three, topics.unwrap())
}

/// Partition 0 of a three-replica topic after its in-sync set shrank to its leader alone,
/// then that leader's node failed: `(limits with the leader's node fenced, topics, leader,
/// followers)`.
fn leaderless_partition() -> (
    ControllerLimits,
    BTreeMap<String, Arc<TopicMetadata>>,
    u32,
    Vec<u32>,
) {
    let (three, topics) = replicated_topic(1);
    let leader = topics["r"].partition_brokers[0];
    let followers = topics["r"].followers(0).to_vec();
    let shrink = ControllerRequest::AlterIsr {
        topic: "r".into(),
        partition: 0,
        leader,
        leader_epoch: 0,
        isr: vec![leader],
    };
    let (shrunk, _) = super::apply_request(&topics, &shrink, &three, &mut new_topic_id);
    let shrunk = shrunk.expect("the in-sync set shrank");
    let dead_node = leader / BROKERS_PER_NODE;
    let failed = fail_over(
        &shrunk,
        |broker| broker / BROKERS_PER_NODE != dead_node,
        false,
    );
    assert!(
        failed
            .get("r")
            .is_none_or(|t| t.partition_brokers[0] == leader),
        "no live in-sync replica: no clean election"
    );
    let live = ControllerLimits {
        nodes: three
            .nodes
            .iter()
            .copied()
            .filter(|&(node, _)| node != dead_node)
            .collect(),
        ..three
    };
    (live, shrunk, leader, followers)
}

#[test]
fn an_unclean_election_gives_a_leaderless_partition_a_live_replica_out_of_sync() {
    let (live, topics, leader, followers) = leaderless_partition();
    let elect = ControllerRequest::ElectUncleanLeaders {
        partitions: vec![("r".into(), vec![0])],
    };
    let (next, outcomes) = super::apply_request(&topics, &elect, &live, &mut new_topic_id);
    let elected = &next.expect("a leader elected")["r"];
    assert!(outcomes[0].result.is_ok());
    let new_leader = elected.partition_brokers[0];
    assert_ne!(new_leader, leader);
    assert!(followers.contains(&new_leader));
    assert_eq!(elected.isr(0), vec![new_leader], "the only replica in sync");
    assert_eq!(elected.leader_epoch(0), 1);
    assert!(
        elected.followers(0).contains(&leader),
        "the old leader follows"
    );
    assert_eq!(elected.preferred_leader(0), Some(leader), "placement kept");

    // Nobody live: nothing to elect, and nothing changes.
    let none = ControllerLimits {
        nodes: vec![],
        ..live
    };
    let (next, outcomes) = super::apply_request(&topics, &elect, &none, &mut new_topic_id);
    assert!(next.is_none());
    assert!(matches!(outcomes[0].result, Ok(None)));
}

#[test]
fn the_topic_config_makes_failover_and_turning_it_on_elect_out_of_sync_replicas() {
    let (live, topics, leader, followers) = leaderless_partition();
    let dead_node = leader / BROKERS_PER_NODE;
    let enable = ControllerRequest::AlterTopicConfigs {
        topics: vec![(
            "r".into(),
            TopicConfigChange::Incremental(vec![ConfigOp::Set(
                UNCLEAN_LEADER_ELECTION_ENABLE.into(),
                "true".into(),
            )]),
        )],
        validate_only: false,
    };
    // Turned on while the partition has no leader: it gets one at once.
    let (next, _) = super::apply_request(&topics, &enable, &live, &mut new_topic_id);
    let enabled = next.expect("configs changed");
    let new_leader = enabled["r"].partition_brokers[0];
    assert!(followers.contains(&new_leader), "{new_leader}");
    assert_eq!(enabled["r"].isr(0), vec![new_leader]);

    // Set before the failure: the failover itself elects out of sync.
    let mut configured = topics.clone();
    let mut topic = (*topics["r"]).clone();
    topic
        .configs
        .insert(UNCLEAN_LEADER_ELECTION_ENABLE.into(), "TRUE".into());
    configured.insert("r".into(), Arc::new(topic));
    let failed = fail_over(
        &configured,
        |broker| broker / BROKERS_PER_NODE != dead_node,
        false,
    );
    let new_leader = failed["r"].partition_brokers[0];
    assert!(followers.contains(&new_leader));
    assert_eq!(failed["r"].isr(0), vec![new_leader]);
}

/// Four one-core nodes and topic "m", its one partition on brokers 0 (leader) and 1000.
fn movable_topic() -> (ControllerLimits, BTreeMap<String, Arc<TopicMetadata>>) {
    let four = ControllerLimits {
        nodes: (0..4).map(|node| (node, 1)).collect(),
        default_partitions: 1,
        default_replication_factor: 1,
        unclean_election_default: false,
    };
    let mut topic = new_topic("m", -1);
    topic.assignments = vec![vec![0, 1000]];
    let (topics, _) = super::apply_request(
        &BTreeMap::new(),
        &create(vec![topic]),
        &four,
        &mut new_topic_id,
    );
    (four, topics.unwrap())
}

fn reassign(target: Option<Vec<i32>>) -> ControllerRequest {
    ControllerRequest::ReassignPartitions {
        topics: vec![("m".into(), vec![(0, target)])],
    }
}

fn alter_isr_of(topic: &TopicMetadata, isr: Vec<u32>) -> ControllerRequest {
    ControllerRequest::AlterIsr {
        topic: "m".into(),
        partition: 0,
        leader: topic.partition_brokers[0],
        leader_epoch: topic.leader_epoch(0),
        isr,
    }
}

#[test]
fn a_reassignment_grows_the_replicas_then_shrinks_them_once_the_new_ones_are_in_sync() {
    let (four, topics) = movable_topic();
    let (next, outcomes) = apply_request(&topics, &reassign(Some(vec![2000, 3000])), four.clone());
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    let moving = next.unwrap();
    let m = &moving["m"];
    // Old and new together; the leader stays until the new ones are in sync.
    assert_eq!(m.partition_brokers[0], 0);
    let mut followers = m.followers(0).to_vec();
    followers.sort();
    assert_eq!(followers, vec![1000, 2000, 3000]);
    assert_eq!(m.isr(0), vec![0, 1000]);
    let ongoing = &m.partition_reassignments[&0];
    assert_eq!(ongoing.adding(), vec![2000, 3000]);
    assert_eq!(ongoing.removing(), vec![0, 1000]);
    assert_eq!(m.leader_epoch(0), 0);

    // One new replica in sync: not yet.
    let (next, _) = apply_request(&moving, &alter_isr_of(m, vec![0, 1000, 2000]), four.clone());
    let half = next.unwrap();
    assert!(half["m"].partition_reassignments.contains_key(&0));
    // Both: the partition is the new replicas, led by the first one asked for.
    let (next, _) = apply_request(
        &half,
        &alter_isr_of(&half["m"], vec![0, 1000, 2000, 3000]),
        four.clone(),
    );
    let done = next.unwrap();
    let m = &done["m"];
    assert!(m.partition_reassignments.is_empty());
    assert_eq!(m.partition_brokers[0], 2000);
    assert_eq!(m.followers(0), &[3000]);
    assert_eq!(m.isr(0), vec![2000, 3000]);
    assert_eq!(m.leader_epoch(0), 1);
    assert_eq!(m.preferred_leader(0), Some(2000));
}

#[test]
fn a_cancelled_reassignment_goes_back_and_bad_targets_are_refused() {
    let (four, topics) = movable_topic();
    // Cancelling with nothing under way, and targets Kafka refuses.
    for (target, code) in [
        (None, ErrorCode::NoReassignmentInProgress),
        (Some(vec![]), ErrorCode::InvalidReplicaAssignment),
        (Some(vec![0, 7000]), ErrorCode::InvalidReplicaAssignment),
        (Some(vec![2000, 2000]), ErrorCode::InvalidReplicaAssignment),
    ] {
        let (next, outcomes) = apply_request(&topics, &reassign(target.clone()), four.clone());
        assert!(next.is_none(), "{target:?}");
        assert_eq!(
            outcomes[0].result.as_ref().err().map(|e| e.0),
            Some(code),
            "{target:?}"
        );
    }
    let (next, _) = apply_request(&topics, &reassign(Some(vec![0, 2000])), four.clone());
    let moving = next.unwrap();
    assert_eq!(moving["m"].partition_reassignments[&0].adding(), vec![2000]);
    let (next, outcomes) = apply_request(&moving, &reassign(None), four.clone());
    assert!(outcomes[0].result.is_ok());
    let back = &next.unwrap()["m"];
    assert!(back.partition_reassignments.is_empty());
    assert_eq!(back.partition_brokers[0], 0);
    assert_eq!(back.followers(0), &[1000]);
    assert_eq!(back.preferred_leader(0), Some(0));

    // Dropping a replica needs no copying: done at once.
    let (next, _) = apply_request(&topics, &reassign(Some(vec![1000])), four);
    let shrunk = &next.unwrap()["m"];
    assert!(shrunk.partition_reassignments.is_empty());
    assert_eq!(shrunk.partition_brokers[0], 1000);
    assert!(shrunk.followers(0).is_empty());
    assert_eq!(shrunk.leader_epoch(0), 1);
}

#[test]
fn the_cluster_wide_default_elects_out_of_sync_unless_the_topic_says_no() {
    let (_, topics, leader, followers) = leaderless_partition();
    let dead_node = leader / BROKERS_PER_NODE;
    let live = |broker: u32| broker / BROKERS_PER_NODE != dead_node;
    let failed = fail_over(&topics, live, true);
    let new_leader = failed["r"].partition_brokers[0];
    assert!(followers.contains(&new_leader));
    assert_eq!(failed["r"].isr(0), vec![new_leader]);

    let mut refusing = (*topics["r"]).clone();
    refusing
        .configs
        .insert(UNCLEAN_LEADER_ELECTION_ENABLE.into(), "false".into());
    let refusing = BTreeMap::from([("r".to_string(), Arc::new(refusing))]);
    assert!(
        fail_over(&refusing, live, true).is_empty(),
        "the topic's own false wins"
    );
}
