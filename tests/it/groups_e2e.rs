//! Consumer groups end to end with librdkafka (the `rdkafka` crate), plus one kcat member
//! that is killed: three consumers in one group share a 6-partition topic disjointly and
//! read every message exactly once; a fourth joins and one leaves, and consumption goes on
//! without loss or duplicates; a member killed without leaving is evicted after its
//! session timeout; committed offsets are where a new consumer of the group starts, also
//! after a broker restart.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{Broker, RawClient, temp_dir};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

const TOPIC: &str = "shared";
const PARTITIONS: i32 = 6;
const GROUP: &str = "my-group";

/// What one member read: `(partition, offset, value)`.
type Read = (i32, i64, String);

struct Member {
    name: String,
    stop: Arc<AtomicBool>,
    read: Arc<Mutex<Vec<Read>>>,
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    commit_refusals: Arc<Mutex<usize>>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// A subscribed consumer in `GROUP` that commits each message synchronously before it
    /// polls again (so a rebalance never hands a processed message to another member).
    fn start(bootstrap: &str, name: &str) -> Member {
        Member::start_with(bootstrap, name, GROUP, TOPIC, "range,roundrobin")
    }

    /// A member of `group` on `topic` using the client-side assignors `strategy`.
    fn start_with(bootstrap: &str, name: &str, group: &str, topic: &str, strategy: &str) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(Mutex::new(Vec::new()));
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let commit_refusals = Arc::new(Mutex::new(0usize));
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("client.id", name)
            .set("partition.assignment.strategy", strategy)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "3000")
            .set("heartbeat.interval.ms", "200")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let thread = {
            let (stop, read, assignment) = (stop.clone(), read.clone(), assignment.clone());
            let commit_refusals = commit_refusals.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(result) = consumer.poll(Duration::from_millis(50)) {
                        let message = result.expect("consume");
                        let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                        read.lock()
                            .unwrap()
                            .push((message.partition(), message.offset(), value));
                        match consumer.commit_message(&message, CommitMode::Sync) {
                            Ok(()) => {}
                            // Kafka refuses commits while a rebalance completes or from
                            // an old generation; cooperative members consume through
                            // rebalances and meet these. The next commit covers it.
                            Err(KafkaError::ConsumerCommit(
                                RDKafkaErrorCode::RebalanceInProgress
                                | RDKafkaErrorCode::IllegalGeneration,
                            )) => {
                                *commit_refusals.lock().unwrap() += 1;
                            }
                            Err(error) => panic!("commit: {error}"),
                        }
                    }
                    let assigned: BTreeSet<i32> = consumer
                        .assignment()
                        .map(|list| list.elements().iter().map(|e| e.partition()).collect())
                        .unwrap_or_default();
                    *assignment.lock().unwrap() = assigned;
                }
                // Dropping the consumer closes it: it leaves the group.
                drop(consumer);
            })
        };
        Member {
            name: name.to_string(),
            stop,
            read,
            assignment,
            commit_refusals,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }

    fn read(&self) -> Vec<Read> {
        self.read.lock().unwrap().clone()
    }

    /// Closes the consumer (LeaveGroup) and waits for its thread.
    fn leave(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("{}: its consumer thread panicked", self.name);
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.leave();
    }
}

fn produce(bootstrap: &str, values: std::ops::Range<usize>) {
    produce_to(bootstrap, TOPIC, values)
}

fn produce_to(bootstrap: &str, topic: &str, values: std::ops::Range<usize>) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in values {
        let (key, value) = (format!("k{}", i % 50), i.to_string());
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Waits until `check` holds (checked every 50 ms), or fails after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The members' assignments are disjoint and cover every partition.
fn settled(members: &[&Member]) -> bool {
    let assignments: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assignment()).collect();
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty())
        && total == PARTITIONS as usize
        && union.len() == total
}

/// Every value in `expected` was read exactly once across `members`.
fn read_exactly_once(members: &[&Member], expected: usize) -> bool {
    let all: Vec<Read> = members.iter().flat_map(|m| m.read()).collect();
    all.len() == expected
}

fn check_exactly_once(members: &[&Member], values: std::ops::Range<usize>) {
    let all: Vec<Read> = members.iter().flat_map(|m| m.read()).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, _, value) in &all {
        *seen.entry(value.clone()).or_default() += 1;
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(duplicates.is_empty(), "read more than once: {duplicates:?}");
    for value in values {
        assert!(
            seen.contains_key(&value.to_string()),
            "message {value} never read"
        );
    }
}

fn describe_members(broker: &Broker) -> Vec<String> {
    let mut bootstrap = RawClient::connect(&broker.bootstrap);
    let found: FindCoordinatorResponse = bootstrap.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str(GROUP)),
    );
    let mut coordinator = RawClient::connect(&format!("127.0.0.1:{}", found.port));
    let response: DescribeGroupsResponse = coordinator.call(
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_static_str(GROUP))]),
    );
    response.groups[0]
        .members
        .iter()
        .map(|m| m.client_id.as_str().to_string())
        .collect()
}

#[test]
fn consumer_group_shares_rebalances_evicts_and_resumes_from_committed_offsets() {
    let dir = temp_dir("groups");
    let args = [
        "--group-initial-rebalance-delay-ms",
        "300",
        "--group-min-session-timeout-ms",
        "1000",
    ];
    let broker = Broker::start(dir.path(), &args);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    futures_lite::future::block_on(admin.create_topics(
        &[NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .unwrap()
    .into_iter()
    .for_each(|result| {
        result.expect("created");
    });

    // Three members share the topic: disjoint assignments covering all six partitions.
    let mut a = Member::start(&broker.bootstrap, "member-a");
    let b = Member::start(&broker.bootstrap, "member-b");
    let c = Member::start(&broker.bootstrap, "member-c");
    wait_until(
        "three members hold disjoint shares",
        Duration::from_secs(30),
        || settled(&[&a, &b, &c]),
    );
    let shares: Vec<BTreeSet<i32>> = [&a, &b, &c].iter().map(|m| m.assignment()).collect();
    produce(&broker.bootstrap, 0..6_000);
    wait_until("6,000 messages read", Duration::from_secs(30), || {
        read_exactly_once(&[&a, &b, &c], 6_000)
    });
    check_exactly_once(&[&a, &b, &c], 0..6_000);
    for (member, share) in [&a, &b, &c].iter().zip(&shares) {
        let partitions: BTreeSet<i32> = member.read().iter().map(|r| r.0).collect();
        assert!(
            partitions.is_subset(share),
            "{} read outside its share",
            member.name
        );
        assert!(!partitions.is_empty(), "{} read nothing", member.name);
    }

    // A fourth member joins and one leaves; messages sent meanwhile are all read once.
    let d = Member::start(&broker.bootstrap, "member-d");
    wait_until(
        "four members hold disjoint shares",
        Duration::from_secs(30),
        || settled(&[&a, &b, &c, &d]),
    );
    produce(&broker.bootstrap, 6_000..9_000);
    a.leave();
    wait_until(
        "three members after a left",
        Duration::from_secs(30),
        || settled(&[&b, &c, &d]),
    );
    produce(&broker.bootstrap, 9_000..12_000);
    wait_until("12,000 messages read", Duration::from_secs(30), || {
        read_exactly_once(&[&a, &b, &c, &d], 12_000)
    });
    check_exactly_once(&[&a, &b, &c, &d], 0..12_000);

    // A member killed without leaving (kcat, SIGKILL) is evicted after its session timeout.
    let mut killed = Command::new("kcat")
        .args([
            "-b",
            &broker.bootstrap,
            "-G",
            GROUP,
            "-q",
            "-X",
            "session.timeout.ms=2000",
            "-X",
            "client.id=member-killed",
            TOPIC,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kcat (apt-get install kcat; .ci/run does)");
    wait_until("the kcat member joined", Duration::from_secs(30), || {
        describe_members(&broker)
            .iter()
            .any(|m| m == "member-killed")
    });
    killed.kill().unwrap();
    killed.wait().unwrap();
    let killed_at = Instant::now();
    wait_until(
        "the killed member was evicted",
        Duration::from_secs(20),
        || {
            !describe_members(&broker)
                .iter()
                .any(|m| m == "member-killed")
        },
    );
    assert!(
        killed_at.elapsed() >= Duration::from_millis(1500),
        "evicted by its session timeout, not before"
    );
    wait_until(
        "three members own everything again",
        Duration::from_secs(30),
        || settled(&[&b, &c, &d]),
    );
    produce(&broker.bootstrap, 12_000..13_000);
    wait_until("13,000 messages read", Duration::from_secs(30), || {
        read_exactly_once(&[&a, &b, &c, &d], 13_000)
    });
    check_exactly_once(&[&a, &b, &c, &d], 0..13_000);
    for member in [&a, &b, &c, &d] {
        assert_eq!(
            *member.commit_refusals.lock().unwrap(),
            0,
            "{}",
            member.name
        );
    }
    drop((b, c, d));

    // Committed offsets survive a restart: a new member starts where the group stopped.
    produce(&broker.bootstrap, 13_000..13_500);
    assert!(broker.stop().success());
    let broker = Broker::start(dir.path(), &args);
    let e = Member::start(&broker.bootstrap, "member-e");
    wait_until("500 new messages read", Duration::from_secs(30), || {
        e.read().len() >= 500
    });
    std::thread::sleep(Duration::from_millis(500));
    let values: HashSet<usize> = e.read().iter().map(|r| r.2.parse().unwrap()).collect();
    assert_eq!(
        e.read().len(),
        500,
        "nothing already committed is read again"
    );
    assert_eq!(values, (13_000..13_500).collect::<HashSet<_>>());
}

#[test]
fn cooperative_sticky_assignor_rebalances_incrementally_without_loss() {
    let dir = temp_dir("cooperative");
    let broker = Broker::start(
        dir.path(),
        &[
            "--group-initial-rebalance-delay-ms",
            "300",
            "--group-min-session-timeout-ms",
            "1000",
        ],
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    futures_lite::future::block_on(admin.create_topics(
        &[NewTopic::new(
            "sticky",
            PARTITIONS,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ))
    .unwrap()
    .into_iter()
    .for_each(|result| {
        result.expect("created");
    });
    let start = |name: &str| {
        Member::start_with(
            &broker.bootstrap,
            name,
            "sticky-group",
            "sticky",
            "cooperative-sticky",
        )
    };
    let a = start("sticky-a");
    let b = start("sticky-b");
    wait_until("two members share", Duration::from_secs(30), || {
        settled(&[&a, &b])
    });
    produce_to(&broker.bootstrap, "sticky", 0..3_000);
    let c = start("sticky-c");
    wait_until("three members share", Duration::from_secs(30), || {
        settled(&[&a, &b, &c])
    });
    produce_to(&broker.bootstrap, "sticky", 3_000..6_000);
    // A commit refused during the rebalance can leave a message to be read again by its
    // partition's next owner (at least once); none may be missed.
    wait_until("6,000 messages read", Duration::from_secs(30), || {
        let distinct: HashSet<String> = [&a, &b, &c]
            .iter()
            .flat_map(|m| m.read())
            .map(|r| r.2)
            .collect();
        distinct.len() == 6_000
    });
    let refusals: usize = [&a, &b, &c]
        .iter()
        .map(|m| *m.commit_refusals.lock().unwrap())
        .sum();
    let read: usize = [&a, &b, &c].iter().map(|m| m.read().len()).sum();
    assert!(
        read - 6_000 <= refusals,
        "re-reads ({}) only where a commit was refused ({refusals})",
        read - 6_000
    );
}
