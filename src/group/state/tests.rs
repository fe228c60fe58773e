//! The group state machine's transitions, driven with explicit times.

use super::*;

const CONFIG: GroupConfig = GroupConfig {
    initial_rebalance_delay: Duration::ZERO,
    session_timeout_min: Duration::from_millis(10),
    session_timeout_max: Duration::from_secs(600),
};

fn join_request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(p.to_string())))
            .collect(),
        require_known_member_id: true,
    }
}

fn now_result<T>(reply: Reply<T>) -> T {
    match reply {
        Reply::Now(result) => result,
        Reply::Later(receiver) => receiver.try_recv().expect("answered already"),
    }
}

fn pending<T>(reply: Reply<T>) -> Receiver<T> {
    match reply {
        Reply::Later(receiver) => receiver,
        Reply::Now(_) => panic!("expected to wait"),
    }
}

/// Joins a new member through MEMBER_ID_REQUIRED; returns its id and pending join.
fn join_new(
    group: &mut Group,
    name: &str,
    protocols: &[&str],
    now: Instant,
) -> (String, Receiver<JoinResult>) {
    let first = now_result(group.join(
        join_request("", protocols),
        &CONFIG,
        || name.to_string(),
        now,
    ));
    assert_eq!(first.error, ErrorCode::MemberIdRequired);
    let reply = group.join(
        join_request(name, protocols),
        &CONFIG,
        || unreachable!(),
        now,
    );
    (name.to_string(), pending(reply))
}

#[test]
fn two_members_form_a_generation_and_sync() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (a, a_join) = join_new(&mut group, "a", &["range", "roundrobin"], now);
    // Alone and all joined: the first generation completes at once (no initial delay).
    let a_result = a_join.try_recv().unwrap();
    assert_eq!((a_result.generation_id, a_result.leader.as_str()), (1, "a"));
    assert_eq!(group.state, GroupState::CompletingRebalance);
    // b arrives: rebalance; a must rejoin.
    let (_, b_join) = join_new(&mut group, "b", &["roundrobin"], now);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(b_join.try_recv().is_err());
    assert_eq!(group.heartbeat(&a, 1, now), ErrorCode::RebalanceInProgress);
    let a_join = pending(group.join(
        join_request("a", &["range", "roundrobin"]),
        &CONFIG,
        || unreachable!(),
        now,
    ));
    let a_result = a_join.try_recv().unwrap();
    let b_result = b_join.try_recv().unwrap();
    assert_eq!(a_result.generation_id, 2);
    assert_eq!(
        a_result.protocol_name.as_deref(),
        Some("roundrobin"),
        "the one both support"
    );
    assert_eq!(a_result.members.len(), 2, "the leader gets the members");
    assert!(b_result.members.is_empty());
    // Follower syncs first and waits for the leader's assignment.
    let b_sync = pending(group.sync("b", 2, vec![], now));
    assert!(b_sync.try_recv().is_err());
    let a_sync = group.sync(
        "a",
        2,
        vec![
            ("a".into(), Bytes::from("A")),
            ("b".into(), Bytes::from("B")),
        ],
        now,
    );
    assert_eq!(now_result(a_sync).assignment, Bytes::from("A"));
    assert_eq!(b_sync.try_recv().unwrap().assignment, Bytes::from("B"));
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat("b", 2, now), ErrorCode::None);
    assert_eq!(group.heartbeat("b", 1, now), ErrorCode::IllegalGeneration);
    assert_eq!(group.heartbeat("zz", 2, now), ErrorCode::UnknownMemberId);
}

#[test]
fn errors_where_kafka_returns_them() {
    let now = Instant::now();
    let mut group = Group::new("g");
    assert_eq!(
        now_result(group.join(
            join_request("ghost", &["range"]),
            &CONFIG,
            || unreachable!(),
            now
        ))
        .error,
        ErrorCode::UnknownMemberId
    );
    let mut short = join_request("", &["range"]);
    short.session_timeout = Duration::from_millis(1);
    assert_eq!(
        now_result(group.join(short, &CONFIG, || "x".into(), now)).error,
        ErrorCode::InvalidSessionTimeout
    );
    let (_, join) = join_new(&mut group, "a", &["range"], now);
    join.try_recv().unwrap();
    // A member with no protocol in common with the group.
    let first = now_result(group.join(join_request("", &["sticky"]), &CONFIG, || "b".into(), now));
    assert_eq!(first.error, ErrorCode::InconsistentGroupProtocol);
    // Sync for the wrong generation, and sync during a rebalance.
    assert!(matches!(
        now_result(group.sync("a", 7, vec![], now)).error,
        ErrorCode::IllegalGeneration
    ));
    let (_, _b_join) = join_new(&mut group, "b", &["range"], now);
    assert_eq!(
        now_result(group.sync("a", 1, vec![], now)).error,
        ErrorCode::RebalanceInProgress
    );
}

#[test]
fn silent_member_is_evicted_and_the_group_rebalances() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (_, a_join) = join_new(&mut group, "a", &["range"], now);
    a_join.try_recv().unwrap();
    let (_, b_join) = join_new(&mut group, "b", &["range"], now);
    let a_join = pending(group.join(
        join_request("a", &["range"]),
        &CONFIG,
        || unreachable!(),
        now,
    ));
    a_join.try_recv().unwrap();
    b_join.try_recv().unwrap();
    now_result(group.sync("a", 2, vec![], now));
    now_result(group.sync("b", 2, vec![], now));
    assert_eq!(group.state, GroupState::Stable);
    // b keeps heartbeating, a goes silent past its 10 s session.
    let later = now + Duration::from_secs(8);
    assert_eq!(group.heartbeat("b", 2, later), ErrorCode::None);
    assert!(group.tick(&CONFIG, now + Duration::from_secs(11)));
    assert!(group.member("a").is_none());
    assert_eq!(group.state, GroupState::PreparingRebalance);
    let b_join = pending(group.join(
        join_request("b", &["range"]),
        &CONFIG,
        || unreachable!(),
        later,
    ));
    let result = b_join.try_recv().unwrap();
    assert_eq!((result.generation_id, result.leader.as_str()), (3, "b"));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let (_, a_join) = join_new(&mut group, "a", &["range"], now);
    a_join.try_recv().unwrap();
    now_result(group.sync("a", 1, vec![], now));
    let (_, b_join) = join_new(&mut group, "b", &["range"], now);
    // a never rejoins; after its 30 s rebalance timeout b continues alone.
    group.heartbeat("a", 1, now);
    assert!(b_join.try_recv().is_err());
    group.tick(&CONFIG, now + Duration::from_secs(31));
    let result = b_join.try_recv().unwrap();
    assert_eq!((result.generation_id, result.leader.as_str()), (2, "b"));
    assert!(group.member("a").is_none());
}

#[test]
fn leaving_last_member_empties_the_group_and_static_members_rejoin_without_rebalance() {
    let now = Instant::now();
    let mut group = Group::new("g");
    let mut request = join_request("", &["range"]);
    request.group_instance_id = Some("instance-1".into());
    let join = pending(group.join(request.clone(), &CONFIG, || "s1".into(), now));
    join.try_recv().unwrap();
    now_result(group.sync("s1", 1, vec![("s1".into(), Bytes::from("A"))], now));
    // Restarted static member: new member id, same instance, same protocols.
    let result = now_result(group.join(request, &CONFIG, || "s2".into(), now));
    assert_eq!((result.error, result.generation_id), (ErrorCode::None, 1));
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(
        now_result(group.sync("s2", 1, vec![], now)).assignment,
        Bytes::from("A")
    );
    assert_eq!(
        group.heartbeat("s1", 1, now),
        ErrorCode::UnknownMemberId,
        "old id fenced"
    );
    assert_eq!(
        group.leave("s2", Some("instance-1"), &CONFIG, now),
        ErrorCode::None
    );
    assert_eq!(group.state, GroupState::Empty);
    assert!(group.members.is_empty());
    // Kafka keeps an emptied group's protocol type: clients tell consumer groups from
    // simple ones by it.
    assert_eq!(group.protocol_type.as_deref(), Some("consumer"));
    // An empty group takes members of any protocol type again.
    let mut connect = join_request("", &["sessioned"]);
    connect.protocol_type = "connect".into();
    connect.group_instance_id = Some("worker-1".into());
    let join = pending(group.join(connect, &CONFIG, || "c1".into(), now));
    group.tick(&CONFIG, now + Duration::from_secs(60));
    let result = join.try_recv().unwrap();
    assert_eq!(result.error, ErrorCode::None);
    assert_eq!(group.protocol_type.as_deref(), Some("connect"));
}

#[test]
fn consumer_subscriptions_parse() {
    let mut metadata = vec![0, 1, 0, 0, 0, 2];
    for topic in ["orders", "logs"] {
        metadata.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        metadata.extend_from_slice(topic.as_bytes());
    }
    metadata.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // user data: null
    assert_eq!(
        subscribed_topics(&metadata),
        Some(vec!["orders".into(), "logs".into()])
    );
    assert_eq!(subscribed_topics(&metadata[..9]), None);
}

#[test]
fn initial_delay_gathers_members_into_one_generation() {
    let config = GroupConfig {
        initial_rebalance_delay: Duration::from_millis(100),
        ..CONFIG
    };
    let now = Instant::now();
    let mut group = Group::new("g");
    let join = |group: &mut Group, id: &str| {
        now_result(group.join(
            join_request("", &["range"]),
            &config,
            || id.to_string(),
            now,
        ));
        pending(group.join(
            join_request(id, &["range"]),
            &config,
            || unreachable!(),
            now,
        ))
    };
    let a = join(&mut group, "a");
    let b = join(&mut group, "b");
    assert!(a.try_recv().is_err(), "held for the initial delay");
    group.tick(&config, now + Duration::from_millis(150));
    assert_eq!(a.try_recv().unwrap().generation_id, 1);
    assert_eq!(b.try_recv().unwrap().generation_id, 1);
}
