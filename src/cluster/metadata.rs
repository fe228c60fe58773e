//! Topic and partition metadata: the immutable [`ClusterSnapshot`] every core reads, the pure
//! placement function, topic-name and topic-config validation, and the text file that
//! persists it all.
//!
//! Owned by the controller (core 0), which builds each new snapshot and pushes it to every
//! core; cores only ever read a snapshot (`Arc`, shared, never mutated). Pure: the file is
//! encoded to and decoded from a string here and written by the controller.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::cluster::broker_config::{
    BrokerConfigs, broker_log_defaults, decode_broker_config_line, encode_broker_config_line,
    inherited_source,
};
use crate::cluster::client_quotas::{ClientQuotas, decode_quota_line, encode_quota_line};
use crate::cluster::topic_config::{ConfigSource, describe_topic_configs, validate_topic_config};
use crate::storage::LogConfig;

/// A topic as every core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    /// Stable for the topic's life (Metadata v10+, Fetch v13+); a re-created topic gets a
    /// new one.
    pub topic_id: Uuid,
    /// For each partition, the broker (`node * 1000 + core`) recorded as its owner when it
    /// was created; on a single node that is the core. Read through
    /// [`ClusterSnapshot::owner`], which folds the core into the node's running core count.
    pub partition_brokers: Vec<u32>,
    /// For each partition with more than one replica, its followers (the brokers beside
    /// the leader in `partition_brokers`, each on a node of its own). Empty for a topic
    /// with one replica, as every single-node topic is.
    pub partition_followers: Vec<Vec<u32>>,
    /// For each replicated partition, its in-sync replicas as the leader last reported
    /// them (leader included). Empty: every replica.
    pub partition_isr: Vec<Vec<u32>>,
    /// For each replicated partition, its leader epoch: 0 at creation, one more at every
    /// leader change. Empty: all 0.
    pub partition_epochs: Vec<i32>,
    /// For each replicated partition, its preferred leader: the replica placed first when
    /// it was created, to which leadership returns once that replica is in sync again
    /// (Kafka's preferred replica). Empty: the recorded leader.
    pub partition_preferred: Vec<u32>,
    /// Topic-level overrides (Kafka names), validated by [`validate_topic_config`].
    pub configs: BTreeMap<String, String>,
    /// Partitions being moved to other replicas (AlterPartitionReassignments), by index.
    /// While one is under way its replicas are the old and the new ones together.
    pub partition_reassignments: BTreeMap<i32, Reassignment>,
}

/// An ongoing reassignment of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    /// The replicas asked for, the preferred leader first: the partition's replicas once
    /// every one of them is in sync.
    pub target: Vec<u32>,
    /// The replicas before, the preferred leader first: what a cancel goes back to.
    pub before: Vec<u32>,
}

impl Reassignment {
    /// Kafka's adding replicas: asked for, not there before.
    pub fn adding(&self) -> Vec<u32> {
        self.target
            .iter()
            .copied()
            .filter(|b| !self.before.contains(b))
            .collect()
    }

    /// Kafka's removing replicas: there before, not asked for.
    pub fn removing(&self) -> Vec<u32> {
        self.before
            .iter()
            .copied()
            .filter(|b| !self.target.contains(b))
            .collect()
    }
}

impl TopicMetadata {
    pub fn partition_count(&self) -> i32 {
        self.partition_brokers.len() as i32
    }

    /// The followers of `partition` as recorded (none for one replica).
    pub fn followers(&self, partition: i32) -> &[u32] {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partition_followers.get(index))
            .map_or(&[], Vec::as_slice)
    }

    /// The leader epoch of `partition`.
    pub fn leader_epoch(&self, partition: i32) -> i32 {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.partition_epochs.get(index))
            .copied()
            .unwrap_or(0)
    }

    /// The preferred leader of `partition` (see `partition_preferred`).
    pub fn preferred_leader(&self, partition: i32) -> Option<u32> {
        let index = usize::try_from(partition).ok()?;
        self.partition_preferred
            .get(index)
            .or_else(|| self.partition_brokers.get(index))
            .copied()
    }

    /// The in-sync replicas of `partition` as recorded (leader first).
    pub fn isr(&self, partition: i32) -> Vec<u32> {
        let index = usize::try_from(partition).unwrap_or(usize::MAX);
        match self.partition_isr.get(index) {
            Some(isr) if !isr.is_empty() => isr.clone(),
            _ => self
                .partition_brokers
                .get(index)
                .into_iter()
                .copied()
                .chain(self.followers(partition).iter().copied())
                .collect(),
        }
    }

    /// Replicas per partition (1 when none is recorded).
    pub fn replication_factor(&self) -> usize {
        1 + self.partition_followers.first().map_or(0, Vec::len)
    }
}

/// Broker ids are `node * BROKERS_PER_NODE + core`, so node 0's brokers keep the core
/// numbers as ids.
pub const BROKERS_PER_NODE: u32 = 1000;

/// The broker id of `core` on `node`.
pub fn broker_id(node: u32, core: u32) -> u32 {
    assert!(core < BROKERS_PER_NODE);
    node * BROKERS_PER_NODE + core
}

/// Where one node's brokers answer: the advertised host and each core's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoints {
    pub host: String,
    /// Port of core i; the node runs `ports.len()` cores.
    pub ports: Vec<u16>,
}

/// One broker as Metadata, DescribeCluster and FindCoordinator advertise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub id: u32,
    pub host: String,
    pub port: u16,
    /// `node-<id>`: rack-aware tools see which brokers share a machine.
    pub rack: String,
}

/// Everything a core needs to route a request: immutable, replaced whole on every change.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Grows by one with every change; a core ignores a snapshot older than its own.
    pub version: u64,
    pub cluster_id: String,
    /// Cores (brokers) running now on this node.
    pub cores: u32,
    pub topics: BTreeMap<String, Arc<TopicMetadata>>,
    topic_names_by_id: HashMap<Uuid, String>,
    /// This process's node id (0 on a single node).
    pub local_node: u32,
    /// Every node known, this one included once its ports are bound; one node outside a
    /// quorum.
    pub nodes: Arc<BTreeMap<u32, NodeEndpoints>>,
    /// Registered nodes the quorum has fenced (no heartbeat within the session timeout):
    /// not advertised, given no new partitions, their partitions leaderless.
    pub fenced: Arc<BTreeSet<u32>>,
    /// Client quotas in force (`client_quotas`); empty on most brokers, which is the
    /// only check the data path makes then.
    pub client_quotas: Arc<ClientQuotas>,
    /// Dynamic broker configs (`broker_config`): log defaults set while the brokers run.
    pub broker_configs: Arc<BrokerConfigs>,
}

impl ClusterSnapshot {
    pub fn new(
        version: u64,
        cluster_id: String,
        cores: u32,
        topics: BTreeMap<String, Arc<TopicMetadata>>,
    ) -> ClusterSnapshot {
        assert!(cores > 0);
        let topic_names_by_id = topics
            .values()
            .map(|topic| (topic.topic_id, topic.name.clone()))
            .collect();
        ClusterSnapshot {
            version,
            cluster_id,
            cores,
            topics,
            topic_names_by_id,
            local_node: 0,
            nodes: Arc::default(),
            fenced: Arc::default(),
            client_quotas: Arc::default(),
            broker_configs: Arc::default(),
        }
    }

    /// The same snapshot with its node map replaced (none fenced).
    pub fn with_nodes(mut self, local_node: u32, nodes: Arc<BTreeMap<u32, NodeEndpoints>>) -> Self {
        self.local_node = local_node;
        self.nodes = nodes;
        self
    }

    /// The same snapshot with these nodes fenced.
    pub fn with_fenced(mut self, fenced: Arc<BTreeSet<u32>>) -> Self {
        self.fenced = fenced;
        self
    }

    /// Whether `broker`'s node is registered and not fenced.
    pub fn is_live(&self, broker: u32) -> bool {
        let node = broker / BROKERS_PER_NODE;
        (self.nodes.is_empty() && node == self.local_node)
            || (self.nodes.contains_key(&node) && !self.fenced.contains(&node))
    }

    /// The next version: new topics, the same cluster and nodes.
    pub fn with_topics(&self, topics: BTreeMap<String, Arc<TopicMetadata>>) -> ClusterSnapshot {
        ClusterSnapshot::new(
            self.version + 1,
            self.cluster_id.clone(),
            self.cores,
            topics,
        )
        .with_nodes(self.local_node, self.nodes.clone())
        .with_fenced(self.fenced.clone())
        .with_client_quotas(self.client_quotas.clone())
        .with_broker_configs(self.broker_configs.clone())
    }

    /// This snapshot with `client_quotas` in force.
    pub fn with_client_quotas(mut self, client_quotas: Arc<ClientQuotas>) -> ClusterSnapshot {
        self.client_quotas = client_quotas;
        self
    }

    /// This snapshot with these dynamic broker configs in force.
    pub fn with_broker_configs(mut self, broker_configs: Arc<BrokerConfigs>) -> ClusterSnapshot {
        self.broker_configs = broker_configs;
        self
    }

    /// The log defaults in force on `broker`: the start-time flags `static_defaults` under
    /// the dynamic broker configs.
    pub fn log_defaults(&self, static_defaults: &LogConfig, broker: u32) -> LogConfig {
        if self.broker_configs.is_empty() {
            return static_defaults.clone();
        }
        broker_log_defaults(static_defaults, &self.broker_configs, broker)
    }

    /// Every topic config of `topic` in force on `broker`, for DescribeConfigs and
    /// CreateTopics: `(key, value, source)`.
    pub fn describe_topic_configs(
        &self,
        static_defaults: &LogConfig,
        broker: u32,
        topic: &TopicMetadata,
    ) -> Vec<(String, String, ConfigSource)> {
        describe_topic_configs(
            &self.log_defaults(static_defaults, broker),
            &topic.configs,
            |name| inherited_source(&self.broker_configs, broker, name),
        )
    }

    /// The broker id of this node's `core`.
    pub fn local_broker(&self, core: u32) -> u32 {
        broker_id(self.local_node, core)
    }

    /// Every broker of every live node, by id: what clients are told about.
    pub fn brokers(&self) -> Vec<BrokerEndpoint> {
        let mut brokers = self.registered_brokers();
        brokers.retain(|broker| !self.fenced.contains(&(broker.id / BROKERS_PER_NODE)));
        brokers
    }

    /// Every broker of every registered node, fenced or not, by id: group coordinators are
    /// chosen over these, so a group stays with its broker (and its committed offsets)
    /// while that broker's node is away.
    pub fn registered_brokers(&self) -> Vec<BrokerEndpoint> {
        self.nodes
            .iter()
            .flat_map(|(&node, endpoints)| {
                endpoints
                    .ports
                    .iter()
                    .enumerate()
                    .map(move |(core, &port)| BrokerEndpoint {
                        id: broker_id(node, core as u32),
                        host: endpoints.host.clone(),
                        port,
                        rack: format!("node-{node}"),
                    })
            })
            .collect()
    }

    /// `(node, cores)` of every live node, for placement. A snapshot without a node map
    /// (start-up, tests) is this node alone.
    pub fn node_cores(&self) -> Vec<(u32, u32)> {
        if self.nodes.is_empty() {
            return vec![(self.local_node, self.cores)];
        }
        self.nodes
            .iter()
            .filter(|(node, _)| !self.fenced.contains(node))
            .map(|(&node, endpoints)| {
                let cores = if node == self.local_node {
                    self.cores
                } else {
                    endpoints.ports.len() as u32
                };
                (node, cores.max(1))
            })
            .collect()
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMetadata>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&Arc<TopicMetadata>> {
        self.topic_names_by_id
            .get(topic_id)
            .and_then(|name| self.topics.get(name))
    }

    /// The broker that owns (leads) `partition` of `topic`, if both exist. A recorded core
    /// beyond its node's running core count (the node restarted with fewer cores) folds
    /// back in.
    pub fn owner(&self, topic: &TopicMetadata, partition: i32) -> Option<u32> {
        let index = usize::try_from(partition).ok()?;
        let &recorded = topic.partition_brokers.get(index)?;
        Some(self.fold(recorded))
    }

    /// The followers of `partition` of `topic` (none for one replica), folded as
    /// [`Self::owner`].
    pub fn followers(&self, topic: &TopicMetadata, partition: i32) -> Vec<u32> {
        topic
            .followers(partition)
            .iter()
            .map(|&recorded| self.fold(recorded))
            .collect()
    }

    fn fold(&self, recorded: u32) -> u32 {
        let (node, core) = (recorded / BROKERS_PER_NODE, recorded % BROKERS_PER_NODE);
        let cores = if node == self.local_node {
            self.cores
        } else {
            match self.nodes.get(&node) {
                Some(endpoints) if !endpoints.ports.is_empty() => endpoints.ports.len() as u32,
                _ => return recorded,
            }
        };
        broker_id(node, core % cores)
    }

    /// The in-sync replicas of `partition` of `topic`, folded as [`Self::owner`].
    pub fn isr(&self, topic: &TopicMetadata, partition: i32) -> Vec<u32> {
        topic
            .isr(partition)
            .into_iter()
            .map(|recorded| self.fold(recorded))
            .collect()
    }

    /// Where `broker` answers, if its node is registered.
    pub fn endpoint(&self, broker: u32) -> Option<(String, u16)> {
        let endpoints = self.nodes.get(&(broker / BROKERS_PER_NODE))?;
        let port = *endpoints.ports.get((broker % BROKERS_PER_NODE) as usize)?;
        Some((endpoints.host.clone(), port))
    }
}

/// Where a new partition lives: a pure function of the topic name and partition index, so
/// a topic's partitions spread round-robin over the cores from a per-topic starting core
/// (topics with few partitions do not all land on core 0).
pub fn place_partition(topic: &str, partition: i32, cores: u32) -> u32 {
    assert!(cores > 0 && partition >= 0);
    let start = fnv1a(topic.as_bytes()) % u64::from(cores);
    ((start + partition as u64) % u64::from(cores)) as u32
}

/// The broker of a new partition in a cluster of `nodes` (`(node, cores)`, sorted by node):
/// partitions go round-robin over the nodes from a per-topic starting node, and within a
/// node over its cores by [`place_partition`]. One node gives exactly `place_partition`.
pub fn place_partition_on_nodes(topic: &str, partition: i32, nodes: &[(u32, u32)]) -> u32 {
    place_replicas_on_nodes(topic, partition, nodes, 1)[0]
}

/// The `replicas` brokers of a new partition, the leader first: each on the next node
/// round-robin from the leader's, so no two share a node and leaders spread evenly.
pub fn place_replicas_on_nodes(
    topic: &str,
    partition: i32,
    nodes: &[(u32, u32)],
    replicas: usize,
) -> Vec<u32> {
    assert!(!nodes.is_empty() && partition >= 0 && (1..=nodes.len()).contains(&replicas));
    let count = nodes.len() as u64;
    let start = fnv1a(topic.as_bytes()).rotate_left(17) % count;
    let round = (partition as u64 / count) as i32;
    (0..replicas as u64)
        .map(|replica| {
            let (node, cores) = nodes[((start + partition as u64 + replica) % count) as usize];
            broker_id(node, place_partition(topic, round, cores))
        })
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Kafka's rule: 1 to 249 characters from `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name '{name}' is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; at most 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name '{name}' holds '{c}'; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

const FILE_MAGIC: &str = "spindle-metadata 1";

/// Encodes the persisted part of a snapshot (cluster id, topics) as text, one topic a line:
/// `topic <name> <uuid> <core,core,...> [key=value ...]`. Names and values hold no spaces.
pub fn encode_metadata_file(snapshot: &ClusterSnapshot) -> String {
    let mut out = format!("{FILE_MAGIC}\ncluster {}\n", snapshot.cluster_id);
    for topic in snapshot.topics.values() {
        let cores: Vec<String> = topic.partition_brokers.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "topic {} {} {}",
            topic.name,
            topic.topic_id.hyphenated(),
            cores.join(",")
        ));
        for (key, value) in &topic.configs {
            out.push_str(&format!(" {key}={value}"));
        }
        out.push('\n');
    }
    for (entity, values) in snapshot.client_quotas.iter() {
        out.push_str(&encode_quota_line(entity, values));
        out.push('\n');
    }
    for (scope, values) in snapshot.broker_configs.iter() {
        out.push_str(&encode_broker_config_line(*scope, values));
        out.push('\n');
    }
    out
}

/// The dynamic broker configs of [`encode_metadata_file`]'s text (its `broker-config`
/// lines).
pub fn decode_broker_configs(text: &str) -> Result<BrokerConfigs, String> {
    let mut configs = BrokerConfigs::new();
    for (number, line) in text.lines().enumerate() {
        let mut words = line.split(' ');
        if words.next() == Some("broker-config") {
            let (scope, values) = decode_broker_config_line(words)
                .map_err(|e| format!("line {}: {e}", number + 1))?;
            configs.insert(scope, values);
        }
    }
    Ok(configs)
}

/// The client quotas of [`encode_metadata_file`]'s text (its `quota` lines).
pub fn decode_client_quotas(text: &str) -> Result<ClientQuotas, String> {
    let mut quotas = ClientQuotas::new();
    for (number, line) in text.lines().enumerate() {
        let mut words = line.split(' ');
        if words.next() == Some("quota") {
            let (entity, values) =
                decode_quota_line(words).map_err(|e| format!("line {}: {e}", number + 1))?;
            quotas.insert(entity, values);
        }
    }
    Ok(quotas)
}

/// Decodes [`encode_metadata_file`]'s text: `(cluster_id, topics)`.
pub fn decode_metadata_file(
    text: &str,
) -> Result<(String, BTreeMap<String, Arc<TopicMetadata>>), String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, line)) if line == FILE_MAGIC => {}
        other => return Err(format!("first line is {other:?}, expected '{FILE_MAGIC}'")),
    }
    let mut cluster_id = None;
    let mut topics = BTreeMap::new();
    for (number, line) in lines {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        let mut words = line.split(' ');
        match words.next() {
            Some("cluster") => {
                cluster_id = Some(
                    words
                        .next()
                        .ok_or_else(|| bad("no cluster id"))?
                        .to_string(),
                )
            }
            Some("topic") => {
                let name = words.next().ok_or_else(|| bad("no name"))?;
                validate_topic_name(name).map_err(|e| bad(&e))?;
                let topic_id = words
                    .next()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| bad("bad topic id"))?;
                let partition_brokers = words
                    .next()
                    .ok_or_else(|| bad("no partitions"))?
                    .split(',')
                    .map(|core| core.parse::<u32>())
                    .collect::<Result<Vec<u32>, _>>()
                    .map_err(|_| bad("bad partition core"))?;
                let mut configs = BTreeMap::new();
                for pair in words {
                    let (key, value) = pair.split_once('=').ok_or_else(|| bad("bad config"))?;
                    validate_topic_config(key, value).map_err(|e| bad(&e))?;
                    configs.insert(key.to_string(), value.to_string());
                }
                let topic = TopicMetadata {
                    name: name.to_string(),
                    topic_id,
                    partition_brokers,
                    partition_followers: Vec::new(),
                    partition_isr: Vec::new(),
                    partition_epochs: Vec::new(),
                    partition_preferred: Vec::new(),
                    configs,
                    partition_reassignments: BTreeMap::new(),
                };
                topics.insert(name.to_string(), Arc::new(topic));
            }
            // Read by decode_client_quotas and decode_broker_configs.
            Some("quota") | Some("broker-config") => {}
            Some("") | None => {}
            Some(_) => return Err(bad("unknown line")),
        }
    }
    let cluster_id = cluster_id.ok_or("no cluster line")?;
    Ok((cluster_id, topics))
}

/// A random version-4 UUID from the kernel's generator, never the all-zero or the
/// reserved "metadata topic" id that Kafka gives special meaning.
pub fn new_topic_id() -> Uuid {
    loop {
        let mut bytes = [0u8; 16];
        getrandom_bytes(&mut bytes);
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        if id != Uuid::nil() && id.as_u128() != 1 {
            return id;
        }
    }
}

/// Fills `out` from the kernel's random source.
/// A random id for one process's registration with the quorum.
pub fn new_incarnation() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom_bytes(&mut bytes);
    u64::from_be_bytes(bytes)
}

pub fn getrandom_bytes(out: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(out))
        .expect("read /dev/urandom");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topic_config::topic_log_config;
    use crate::storage::LogConfig;

    fn topic(name: &str, cores: Vec<u32>) -> Arc<TopicMetadata> {
        Arc::new(TopicMetadata {
            name: name.into(),
            topic_id: new_topic_id(),
            partition_brokers: cores,
            partition_followers: Vec::new(),
            partition_isr: Vec::new(),
            partition_epochs: Vec::new(),
            partition_preferred: Vec::new(),
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            partition_reassignments: BTreeMap::new(),
        })
    }

    #[test]
    fn placement_spreads_partitions_over_cores() {
        for cores in 1..=16 {
            let mut seen = vec![0; cores as usize];
            for partition in 0..(cores as i32 * 4) {
                seen[place_partition("orders", partition, cores) as usize] += 1;
            }
            assert!(seen.iter().all(|&count| count == 4), "{cores}: {seen:?}");
        }
        assert_eq!(place_partition("a", 3, 4), place_partition("a", 3, 4));
    }

    #[test]
    fn metadata_file_round_trips() {
        let topics = BTreeMap::from([
            ("orders".to_string(), topic("orders", vec![0, 1, 0])),
            ("logs.app_1".to_string(), topic("logs.app_1", vec![1])),
        ]);
        let snapshot = ClusterSnapshot::new(3, "abc".into(), 2, topics.clone());
        let text = encode_metadata_file(&snapshot);
        let (cluster_id, decoded) = decode_metadata_file(&text).unwrap();
        assert_eq!(cluster_id, "abc");
        assert_eq!(decoded, topics);
        assert!(decode_metadata_file("garbage").is_err());
        assert!(decode_metadata_file(&text.replace("0,1,0", "0,x")).is_err());
    }

    #[test]
    fn owner_folds_into_fewer_cores_and_ids_resolve() {
        let orders = topic("orders", vec![0, 3]);
        let snapshot = ClusterSnapshot::new(
            1,
            "c".into(),
            2,
            BTreeMap::from([("orders".to_string(), orders.clone())]),
        );
        assert_eq!(snapshot.owner(&orders, 1), Some(1));
        assert_eq!(snapshot.owner(&orders, 2), None);
        assert_eq!(snapshot.owner(&orders, -1), None);
        assert_eq!(
            snapshot.topic_by_id(&orders.topic_id).unwrap().name,
            "orders"
        );
    }

    #[test]
    fn topic_names_and_configs_are_checked() {
        assert!(validate_topic_name("my_topic.v1-a").is_ok());
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("segment.bytes", "100").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact").is_ok());
        assert!(validate_topic_config("cleanup.policy", "archive").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
        let config = topic_log_config(
            &LogConfig::default(),
            &BTreeMap::from([("retention.bytes".to_string(), "5".to_string())]),
        );
        assert_eq!(config.retention_bytes, 5);
    }
}
