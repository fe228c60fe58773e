//! Several nodes in one cluster (issue 13, first part): three `spindle serve` processes on
//! 127.0.0.1, one core each, sharing their metadata through the Raft quorum. Checked with
//! librdkafka, an unmodified client: every node advertises every broker (ids node*1000 +
//! core, rack node-N), a topic created through one node is placed over all three and
//! served by its owners, a consumer group bootstrapped elsewhere commits, and a restarted
//! node rejoins with its topics and data. A replication factor above the node count is
//! refused with INVALID_REPLICATION_FACTOR (replication itself: `replication.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use crate::common::{Broker, RawClient, Starting, temp_dir};

/// Free ports for the quorum's RPC listeners: checked free, from 20000-31999, below the
/// kernel's ephemeral range, so the brokers other tests start on port 0 cannot take one
/// between this check and the node binding it.
pub(crate) fn free_ports(count: usize) -> Vec<u16> {
    use std::hash::{BuildHasher, Hasher};
    let mut ports = Vec::new();
    while ports.len() < count {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(ports.len());
        let port = 20_000 + (hasher.finish() % 12_000) as u16;
        if !ports.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    ports
}

pub(crate) struct Cluster {
    quorum: String,
    pub(crate) dirs: Vec<std::path::PathBuf>,
    pub(crate) session_timeout_ms: Option<u64>,
    /// More `spindle serve` flags for every node.
    pub(crate) extra_args: Vec<String>,
    /// More flags for one node (by index).
    pub(crate) node_args: BTreeMap<usize, Vec<String>>,
}

impl Cluster {
    pub(crate) fn new(root: &Path, nodes: usize) -> Cluster {
        let quorum = free_ports(nodes)
            .iter()
            .enumerate()
            .map(|(node, port)| format!("{node}@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let dirs = (0..nodes)
            .map(|node| root.join(format!("node-{node}")))
            .collect();
        Cluster {
            quorum,
            dirs,
            session_timeout_ms: None,
            extra_args: Vec::new(),
            node_args: BTreeMap::new(),
        }
    }

    pub(crate) fn spawn(&self, node: usize) -> Starting {
        let node_id = node.to_string();
        let session = self.session_timeout_ms.unwrap_or(9000).to_string();
        let args = [
            "--broker-session-timeout-ms",
            &session,
            "--cores",
            "1",
            "--node-id",
            &node_id,
            "--quorum",
            &self.quorum,
            "--quorum-tick-ms",
            "50",
            "--cache-bytes-per-core",
            "67108864",
            "--group-initial-rebalance-delay-ms",
            "0",
        ];
        let mut args: Vec<&str> = args.to_vec();
        args.extend(self.extra_args.iter().map(String::as_str));
        args.extend(
            self.node_args
                .get(&node)
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        let command = Broker::command(&self.dirs[node], &args);
        Broker::spawn(command, &self.dirs[node], Stdio::inherit())
    }

    /// Starts every node together (each waits for a majority) and waits for all to listen.
    pub(crate) fn start_all(&self) -> Vec<Broker> {
        let starting: Vec<Starting> = (0..self.dirs.len()).map(|node| self.spawn(node)).collect();
        starting.into_iter().map(Starting::listening).collect()
    }
}

pub(crate) fn metadata(address: &str) -> MetadataResponse {
    let mut client = RawClient::connect(address);
    client.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
}

/// `partition -> leader` of `topic` as `address` sees it (empty if unknown there).
pub(crate) fn leaders(address: &str, topic: &str) -> BTreeMap<i32, i32> {
    metadata(address)
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|name| name.as_str() == topic))
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.error_code == 0)
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect()
}

/// Creates `topic` through `bootstrap` with a partition per entry of `assignment` (its
/// replicas' broker ids, the preferred leader first) and `configs`, and waits for it.
pub(crate) fn create_assigned_topic(
    bootstrap: &str,
    topic: &str,
    assignment: &[&[i32]],
    configs: &[(&str, &str)],
) {
    let mut new_topic = NewTopic::new(topic, 1, TopicReplication::Variable(assignment));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let created = futures_lite::future::block_on(admin(bootstrap).create_topics(
        &[new_topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create topics");
    assert!(created[0].is_ok(), "{created:?}");
}

/// Partition `partition` of `topic` as `address`'s Metadata reports it.
pub(crate) fn partition_metadata(
    address: &str,
    topic: &str,
    partition: i32,
) -> Option<kafka_protocol::messages::metadata_response::MetadataResponsePartition> {
    metadata(address)
        .topics
        .into_iter()
        .filter(|t| t.name.as_ref().is_some_and(|name| name.as_str() == topic))
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
}

/// Sends `values` to partition 0 of `topic` with `acks`, and waits for every answer.
pub(crate) fn produce_values(bootstrap: &str, topic: &str, acks: &str, values: &[&str]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    for value in values {
        producer
            .send(BaseRecord::<(), str>::to(topic).partition(0).payload(value))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

/// ElectLeaders of `election_type` (0 preferred, 1 unclean) for the partitions named, or
/// every partition: `(topic, partition) -> error code`.
pub(crate) fn elect_leaders(
    address: &str,
    election_type: i8,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> BTreeMap<(String, i32), i16> {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(10_000)
        .with_topic_partitions(topics.map(|topics| {
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect()
        }));
    let response: ElectLeadersResponse =
        RawClient::connect(address).call(ApiKey::ElectLeaders, 2, &request);
    response
        .replica_election_results
        .iter()
        .flat_map(|topic| {
            topic.partition_result.iter().map(|p| {
                (
                    (topic.topic.as_str().to_string(), p.partition_id),
                    p.error_code,
                )
            })
        })
        .collect()
}

pub(crate) fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

pub(crate) fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replicas: i32,
) -> Result<(), RDKafkaErrorCode> {
    let results = futures_lite::future::block_on(admin(bootstrap).create_topics(
        &[NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(replicas),
        )],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))
    .expect("create topics");
    results[0].clone().map(|_| ()).map_err(|(_, code)| code)
}

/// Reads `topic`'s partitions from the start until `expected` messages arrived:
/// `(partition, offset, key, value)`.
pub(crate) fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, i64, String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cluster-reader-unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assign");
    collect(&consumer, expected)
}

fn collect(consumer: &BaseConsumer, expected: usize) -> Vec<(i32, i64, String, String)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let text = |bytes: Option<&[u8]>| {
                String::from_utf8(bytes.unwrap_or_default().to_vec()).unwrap()
            };
            out.push((
                message.partition(),
                message.offset(),
                text(message.key()),
                text(message.payload()),
            ));
        }
    }
    out
}

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 6;
const MESSAGES: usize = 3_000;
const KEYS: usize = 50;

#[test]
fn three_nodes_share_metadata_and_serve_a_topic_placed_over_all_of_them() {
    let root = temp_dir("cluster-three");
    let cluster = Cluster::new(root.path(), 3);
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let bootstrap =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();

    // Every node advertises all three brokers, each with its node as rack.
    for node in 0..3 {
        let address = bootstrap(&nodes, node);
        let brokers: BTreeMap<i32, String> = wait_for("every node registered", || {
            let brokers: BTreeMap<i32, String> = metadata(&address)
                .brokers
                .iter()
                .map(|b| (b.node_id.0, b.rack.as_ref().unwrap().to_string()))
                .collect();
            (brokers.len() == 3).then_some(brokers)
        });
        let expected: BTreeMap<i32, String> =
            (0..3).map(|n| (n * 1000, format!("node-{n}"))).collect();
        assert_eq!(brokers, expected, "as node {node} sees it");
        let mut client = RawClient::connect(&address);
        let described: DescribeClusterResponse = client.call(
            ApiKey::DescribeCluster,
            0,
            &DescribeClusterRequest::default(),
        );
        assert_eq!(described.brokers.len(), 3);
        assert!(described.brokers.iter().all(|b| b.rack.is_some()));
    }
    let cluster_ids: BTreeSet<String> = (0..3)
        .map(|node| {
            metadata(&bootstrap(&nodes, node))
                .cluster_id
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(cluster_ids.len(), 1, "one cluster id: {cluster_ids:?}");

    // One replica per node: four replicas on three nodes are refused with Kafka's code.
    assert_eq!(
        create_topic(&bootstrap(&nodes, 0), "replicated", 3, 4),
        Err(RDKafkaErrorCode::InvalidReplicationFactor)
    );

    // Created through node 1; placed two partitions per node; every node agrees.
    create_topic(&bootstrap(&nodes, 1), TOPIC, PARTITIONS, 1).expect("create");
    let placement = wait_for("every node knows the topic", || {
        let seen: Vec<BTreeMap<i32, i32>> = (0..3)
            .map(|node| leaders(&bootstrap(&nodes, node), TOPIC))
            .collect();
        (seen
            .iter()
            .all(|s| s.len() == PARTITIONS as usize && *s == seen[0]))
        .then(|| seen[0].clone())
    });
    let mut per_node: HashMap<i32, usize> = HashMap::new();
    for leader in placement.values() {
        *per_node.entry(leader / 1000).or_default() += 1;
    }
    assert_eq!(
        per_node,
        HashMap::from([(0, 2), (1, 2), (2, 2)]),
        "{placement:?}"
    );

    // An idempotent producer that only knows node 0 reaches every partition's owner.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap(&nodes, 0))
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..MESSAGES {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{i}");
        loop {
            match producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
                Ok(()) => break,
                Err((_, _)) => producer.poll(Duration::from_millis(10)),
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("every message acknowledged");

    // A group bootstrapped at node 2 reads everything once, in order per key, and commits.
    let group_consumer = |bootstrap: &str| -> BaseConsumer {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "cluster-group")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        consumer
    };
    let consumer = group_consumer(&bootstrap(&nodes, 2));
    let consumed = collect(&consumer, MESSAGES);
    check_order(&consumed);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(consumer);

    // Node 1 restarts: it rejoins with its topic and its partitions' data; the group's
    // offsets (on whichever broker coordinates it) are kept; nothing is read twice.
    let status = nodes[1].take().unwrap().stop();
    assert!(status.success(), "node 1 stopped with {status}");
    nodes[1] = Some(cluster.spawn(1).listening());
    let after = wait_for("node 1 knows the topic again", || {
        let seen = leaders(&bootstrap(&nodes, 1), TOPIC);
        (seen.len() == PARTITIONS as usize).then_some(seen)
    });
    assert_eq!(after, placement);
    let reread = read_all(&bootstrap(&nodes, 1), TOPIC, PARTITIONS, MESSAGES);
    check_order(&reread);
    let consumer = group_consumer(&bootstrap(&nodes, 0));
    let extra = collect_for(&consumer, Duration::from_secs(3));
    assert!(extra.is_empty(), "read again after the commit: {extra:?}");
}

/// Every message once, offsets without gaps per partition, values rising per key.
fn check_order(consumed: &[(i32, i64, String, String)]) {
    assert_eq!(consumed.len(), MESSAGES);
    let values: BTreeSet<usize> = consumed.iter().map(|m| m.3.parse().unwrap()).collect();
    assert_eq!(values.len(), MESSAGES, "duplicates");
    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_value: HashMap<&str, usize> = HashMap::new();
    for (partition, offset, key, value) in consumed {
        let expected = next_offset.entry(*partition).or_insert(0);
        assert_eq!(offset, expected, "partition {partition}");
        *expected += 1;
        let value: usize = value.parse().unwrap();
        if let Some(previous) = last_value.insert(key, value) {
            assert!(previous < value, "{key}: {previous} then {value}");
        }
    }
}

fn collect_for(consumer: &BaseConsumer, time: Duration) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + time;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            out.push((message.partition(), message.offset()));
        }
    }
    out
}

#[test]
fn a_node_without_a_majority_waits_and_stops_on_a_signal() {
    let root = temp_dir("cluster-alone");
    let cluster = Cluster::new(root.path(), 3);
    let mut alone = cluster.spawn(0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alone.is_running(), "a node must wait for its quorum");
    let status = alone.stop();
    assert_eq!(status.code(), Some(1), "{status}");
}

#[test]
fn a_restarted_node_waits_for_a_majority_even_though_its_log_names_it() {
    let root = temp_dir("cluster-restart-alone");
    let mut cluster = Cluster::new(root.path(), 3);
    // Fixed ports: a restarted node's endpoints are the ones its own log holds.
    for (node, port) in free_ports(3).into_iter().enumerate() {
        cluster
            .node_args
            .insert(node, vec!["--core-port-base".into(), port.to_string()]);
    }
    let nodes = cluster.start_all();
    wait_for("all registered", || {
        (metadata(&nodes[0].bootstrap).brokers.len() == 3).then_some(())
    });
    for node in nodes {
        assert!(node.stop().success());
    }
    // Alone, node 0 replays a log that registers it with these very ports; it must still
    // wait for a majority to take its new registration before it serves.
    let mut alone = cluster.spawn(0);
    std::thread::sleep(Duration::from_secs(2));
    assert!(alone.is_running(), "a node must wait for its quorum");
    let status = alone.stop();
    assert_eq!(status.code(), Some(1), "stopped while waiting: {status}");
}

/// Brokers `address` advertises, and the partitions of `topic` it reports leaderless.
fn live_view(address: &str, topic: &str) -> (BTreeSet<i32>, BTreeSet<i32>) {
    let response = metadata(address);
    let brokers = response.brokers.iter().map(|b| b.node_id.0).collect();
    let leaderless = response
        .topics
        .iter()
        .filter(|t| t.name.as_ref().is_some_and(|name| name.as_str() == topic))
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.error_code == 5 && p.leader_id.0 == -1)
        .map(|p| p.partition_index)
        .collect();
    (brokers, leaderless)
}

#[test]
fn a_killed_node_is_fenced_within_the_session_timeout_and_returns_on_restart() {
    let root = temp_dir("cluster-fence");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    let mut nodes: Vec<Option<Broker>> = cluster.start_all().into_iter().map(Some).collect();
    let address =
        |nodes: &[Option<Broker>], node: usize| nodes[node].as_ref().unwrap().bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(&nodes, 0)).brokers.len() == 3).then_some(())
    });
    create_topic(&address(&nodes, 0), TOPIC, PARTITIONS, 1).expect("create");
    let placement = wait_for("the topic everywhere", || {
        let seen = leaders(&address(&nodes, 1), TOPIC);
        (seen.len() == PARTITIONS as usize).then_some(seen)
    });
    let on_node_2: BTreeSet<i32> = placement
        .iter()
        .filter(|(_, leader)| **leader / 1000 == 2)
        .map(|(partition, _)| *partition)
        .collect();
    assert_eq!(on_node_2.len(), 2, "{placement:?}");

    // SIGKILL: no goodbye. Within the session timeout (plus an election if node 2 led the
    // quorum) the others stop advertising it and report its partitions leaderless.
    let killed_at = Instant::now();
    nodes[2].take().unwrap().kill();
    let (brokers, leaderless) = wait_for("node 2 fenced", || {
        let view = live_view(&address(&nodes, 0), TOPIC);
        (view.0.len() == 2).then_some(view)
    });
    let fenced_after = killed_at.elapsed();
    eprintln!("node 2 fenced {fenced_after:?} after SIGKILL (session timeout 1 s)");
    assert!(fenced_after < Duration::from_secs(10), "{fenced_after:?}");
    assert_eq!(brokers, BTreeSet::from([0, 1000]));
    assert_eq!(leaderless, on_node_2);
    // New partitions go to the live nodes only.
    create_topic(&address(&nodes, 1), "while-fenced", 4, 1).expect("create");
    let placed = wait_for("the new topic", || {
        let seen = leaders(&address(&nodes, 0), "while-fenced");
        (seen.len() == 4).then_some(seen)
    });
    assert!(
        placed.values().all(|leader| leader / 1000 != 2),
        "{placed:?}"
    );

    // Restarted, it registers again: advertised, and its partitions have a leader again.
    nodes[2] = Some(cluster.spawn(2).listening());
    wait_for("node 2 back", || {
        let (brokers, leaderless) = live_view(&address(&nodes, 0), TOPIC);
        (brokers.len() == 3 && leaderless.is_empty()).then_some(())
    });
    // Node 2 applies the same commits, perhaps a moment after node 0.
    wait_for("node 2 sees the placement", || {
        (leaders(&address(&nodes, 2), TOPIC) == placement).then_some(())
    });
}

#[test]
fn a_paused_node_is_fenced_and_unfenced_when_it_resumes() {
    let root = temp_dir("cluster-pause");
    let mut cluster = Cluster::new(root.path(), 3);
    cluster.session_timeout_ms = Some(1000);
    let nodes = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    // SIGSTOP past the session timeout: alive but silent, as under a long GC pause or a
    // stalled VM. The others fence it.
    nodes[1].signal(libc::SIGSTOP);
    let stopped_at = Instant::now();
    wait_for("node 1 fenced", || {
        let brokers = live_view(&address(0), TOPIC).0;
        (brokers == BTreeSet::from([0, 2000])).then_some(())
    });
    eprintln!("node 1 fenced {:?} after SIGSTOP", stopped_at.elapsed());
    // Resumed, it learns it was fenced and registers again, without a restart.
    nodes[1].signal(libc::SIGCONT);
    wait_for("node 1 unfenced", || {
        let brokers = live_view(&address(2), TOPIC).0;
        (brokers.len() == 3).then_some(())
    });
    wait_for("node 1 sees itself back", || {
        (live_view(&address(1), TOPIC).0.len() == 3).then_some(())
    });
}

/// A topic change sent through a node while the metadata quorum's leader is paused is
/// answered within seconds, created or NOT_CONTROLLER (which clients retry), never left
/// waiting for the controller's 15 s timeout (a proposal forwarded to the paused leader is
/// lost with it). Each node is paused in turn, so one of the pauses hits the leader.
#[test]
fn a_topic_change_during_a_quorum_leader_pause_is_answered_promptly() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
    let root = temp_dir("cluster-leader-pause");
    let mut cluster = Cluster::new(root.path(), 3);
    // Paused nodes stay registered: only the quorum's leadership moves.
    cluster.session_timeout_ms = Some(60_000);
    let nodes = cluster.start_all();
    let address = |node: usize| nodes[node].bootstrap.clone();
    wait_for("all registered", || {
        (metadata(&address(0)).brokers.len() == 3).then_some(())
    });
    let create = |via: usize, name: &str| -> i16 {
        let response: CreateTopicsResponse = RawClient::connect(&address(via)).call(
            ApiKey::CreateTopics,
            5,
            &CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(crate::common::topic_name(name))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ]),
        );
        response.topics[0].error_code
    };
    for (paused, node) in nodes.iter().enumerate() {
        let via = (paused + 1) % 3;
        node.signal(libc::SIGSTOP);
        let started = Instant::now();
        let name = format!("during-pause-{paused}");
        let code = create(via, &name);
        let took = started.elapsed();
        eprintln!(
            "node {paused} paused: CreateTopics through node {via} answered {code} in {took:?}"
        );
        assert!(code == 0 || code == 41, "created or NOT_CONTROLLER: {code}");
        assert!(took < Duration::from_secs(8), "answered after {took:?}");
        node.signal(libc::SIGCONT);
        // Asked again, as a client does, it is created (or found created).
        if code == 41 {
            wait_for("created on a retry", || {
                matches!(create(via, &name), 0 | 36).then_some(())
            });
        }
        wait_for("the topic everywhere", || {
            (0..3)
                .all(|node| leaders(&address(node), &name).len() == 1)
                .then_some(())
        });
    }
}
