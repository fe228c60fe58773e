//! The metadata the quorum replicates, and the commands that change it: every node applies
//! the same committed commands in the same order to a [`MetadataState`] and so holds the
//! same cluster (its id, its nodes and their ports, its topics).
//!
//! Pure: no I/O, no clock, no randomness. A command carries every choice a node could make
//! differently (topic ids, the default partition count), so applying it is deterministic.
//! Lives on each node's quorum thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::broker_config::{BrokerConfigs, unclean_election_default};
use crate::cluster::client_quotas::ClientQuotas;
use crate::cluster::control::{ControllerRequest, TopicOutcome};
use crate::cluster::controller::{
    ControllerLimits, apply_broker_config_request, apply_request, elect_leaders_of_leaderless,
    elect_preferred_leaders, fail_over, unclean_election_enabled,
};
use crate::cluster::metadata::{BROKERS_PER_NODE, NodeEndpoints, TopicMetadata};

/// One change to the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A node announces (or, after a restart, re-announces) where its cores answer. The
    /// first registration applied also names the cluster.
    RegisterNode {
        node: u32,
        host: String,
        ports: Vec<u16>,
        cluster_id: String,
        /// Chosen afresh by each process start (Kafka's incarnation id): a new one means
        /// the node restarted, and whatever its replicas acknowledged before may be gone.
        #[serde(default)]
        incarnation: u64,
    },
    /// The quorum's leader has not heard from `node` within the session timeout: its
    /// brokers are no longer advertised or given partitions until it registers again.
    FenceNode { node: u32 },
    /// The quorum's leader found partitions whose preferred leader is back in sync but
    /// not leading (Kafka's `auto.leader.rebalance.enable`): they move back to it.
    ElectPreferredLeaders,
    /// A topic change asked through any broker of any node.
    Topics {
        request: ControllerRequest,
        /// Ids for the topics a CreateTopics makes, in request order, chosen by the node
        /// that proposed it.
        topic_ids: Vec<Uuid>,
        /// The proposing node's `--default-partitions`.
        default_partitions: i32,
        /// The proposing node's `--default-replication-factor`.
        #[serde(default = "one")]
        default_replication_factor: i16,
    },
}

fn one() -> i16 {
    1
}

/// A command as stored in the log: who proposed it, so that node can answer its client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub origin: u32,
    pub request_id: u64,
    pub command: Command,
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a command always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// The replicated metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataState {
    pub cluster_id: Option<String>,
    pub nodes: BTreeMap<u32, NodeEndpoints>,
    pub fenced: BTreeSet<u32>,
    /// Each registered node's current process (see `Command::RegisterNode`).
    pub incarnations: BTreeMap<u32, u64>,
    pub topics: BTreeMap<String, Arc<TopicMetadata>>,
    pub client_quotas: ClientQuotas,
    pub broker_configs: BrokerConfigs,
}

impl MetadataState {
    /// The partitions that change when `gone` and every fenced node count as down: their
    /// dead replicas leave the in-sync sets, and dead leaders give way to live in-sync ones.
    fn fail_over_without(&self, gone: u32) -> BTreeMap<String, Arc<TopicMetadata>> {
        let live = |broker: u32| {
            let node = broker / BROKERS_PER_NODE;
            node != gone && self.nodes.contains_key(&node) && !self.fenced.contains(&node)
        };
        fail_over(
            &self.topics,
            live,
            unclean_election_default(&self.broker_configs),
        )
    }

    /// Whether `broker`'s node is registered and not fenced.
    fn is_live(&self, broker: u32) -> bool {
        let node = broker / BROKERS_PER_NODE;
        self.nodes.contains_key(&node) && !self.fenced.contains(&node)
    }

    /// Whether some partition's preferred leader could lead it again now.
    pub fn preferred_leaders_due(&self) -> bool {
        !elect_preferred_leaders(&self.topics, |broker| self.is_live(broker)).is_empty()
    }

    /// Applies one committed command: whether anything changed, and the outcomes a
    /// topic change gives its client.
    pub fn apply(&mut self, envelope: &Envelope) -> (bool, Vec<TopicOutcome>) {
        match &envelope.command {
            Command::RegisterNode {
                node,
                host,
                ports,
                cluster_id,
                incarnation,
            } => {
                let mut changed = false;
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                    changed = true;
                }
                let valid = !ports.is_empty() && ports.len() as u32 <= BROKERS_PER_NODE;
                let endpoints = NodeEndpoints {
                    host: host.clone(),
                    ports: ports.clone(),
                };
                if valid && self.nodes.get(node) != Some(&endpoints) {
                    self.nodes.insert(*node, endpoints);
                    changed = true;
                }
                let previous = valid
                    .then(|| self.incarnations.insert(*node, *incarnation))
                    .flatten();
                if valid && previous != Some(*incarnation) {
                    changed = true;
                }
                if previous.is_some_and(|previous| previous != *incarnation) {
                    // A restart: what its replicas held in memory when it stopped (copied,
                    // counted towards the high watermark, not yet written) is gone, so they
                    // leave every in-sync set (and its leaderships move to a replica still
                    // in sync, where there is one) until they have caught up again, as
                    // Kafka does for a broker back from an unclean shutdown.
                    let failed_over = self.fail_over_without(*node);
                    self.topics.extend(failed_over);
                }
                if valid && self.fenced.remove(node) {
                    changed = true;
                }
                (changed, Vec::new())
            }
            Command::FenceNode { node } => {
                let changed = self.nodes.contains_key(node) && self.fenced.insert(*node);
                if changed {
                    let failed_over = self.fail_over_without(*node);
                    self.topics.extend(failed_over);
                }
                (changed, Vec::new())
            }
            Command::ElectPreferredLeaders => {
                let elected = elect_preferred_leaders(&self.topics, |broker| self.is_live(broker));
                let changed = !elected.is_empty();
                self.topics.extend(elected);
                (changed, Vec::new())
            }
            Command::Topics {
                request,
                topic_ids,
                default_partitions,
                default_replication_factor,
            } => {
                if let Some((quotas, outcomes)) = request.apply_client_quotas(&self.client_quotas) {
                    let changed = quotas.is_some();
                    if let Some(quotas) = quotas {
                        self.client_quotas = quotas;
                    }
                    return (changed, outcomes);
                }
                if let Some((configs, outcomes)) =
                    apply_broker_config_request(request, &self.broker_configs)
                {
                    let Some(configs) = configs else {
                        return (false, outcomes);
                    };
                    self.broker_configs = configs;
                    // A cluster-wide unclean.leader.election.enable lets a leaderless
                    // partition be led at once, as a topic's own setting does.
                    let unclean = unclean_election_default(&self.broker_configs);
                    let elected: Vec<Arc<TopicMetadata>> = self
                        .topics
                        .values()
                        .filter_map(|topic| {
                            elect_leaders_of_leaderless(
                                topic,
                                |broker| self.is_live(broker),
                                |_| true,
                                unclean_election_enabled(topic, unclean),
                            )
                        })
                        .collect();
                    for topic in elected {
                        self.topics.insert(topic.name.clone(), topic);
                    }
                    return (true, outcomes);
                }
                let limits = ControllerLimits {
                    nodes: self
                        .nodes
                        .iter()
                        .filter(|(node, _)| !self.fenced.contains(node))
                        .map(|(&node, endpoints)| (node, endpoints.ports.len() as u32))
                        .collect(),
                    default_partitions: *default_partitions,
                    default_replication_factor: *default_replication_factor,
                    unclean_election_default: unclean_election_default(&self.broker_configs),
                };
                if limits.nodes.is_empty() {
                    let refused = request.refuse(
                        spindle_protocol::ErrorCode::BrokerNotAvailable,
                        "no live node has registered",
                    );
                    return (false, refused);
                }
                let mut ids = topic_ids.iter().copied();
                let mut spare = 0u128;
                let mut next_id = || {
                    ids.next().unwrap_or_else(|| {
                        // A proposer always sends one id per topic; should one be missing,
                        // every node derives the same id from the command's identity.
                        spare += 1;
                        Uuid::from_u128(
                            (u128::from(envelope.origin) << 96)
                                | (u128::from(envelope.request_id) << 32)
                                | spare,
                        )
                    })
                };
                let (next, outcomes) = apply_request(&self.topics, request, &limits, &mut next_id);
                let changed = next.is_some();
                if let Some(topics) = next {
                    self.topics = topics;
                }
                (changed, outcomes)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::control::{ConfigOp, NewTopic, TopicConfigChange};

    fn register(node: u32, cores: u16) -> Envelope {
        Envelope {
            origin: node,
            request_id: 1,
            command: Command::RegisterNode {
                node,
                host: "127.0.0.1".into(),
                ports: (0..cores)
                    .map(|core| 9000 + node as u16 * 10 + core)
                    .collect(),
                cluster_id: format!("cluster-of-{node}"),
                incarnation: 1,
            },
        }
    }

    fn create(name: &str, partitions: i32) -> Envelope {
        Envelope {
            origin: 2,
            request_id: 7,
            command: Command::Topics {
                request: ControllerRequest::CreateTopics {
                    topics: vec![NewTopic {
                        name: name.into(),
                        partitions,
                        replication_factor: -1,
                        assignments: vec![],
                        configs: vec![("retention.ms".into(), Some("1000".into()))],
                    }],
                    validate_only: false,
                },
                topic_ids: vec![Uuid::from_u128(42)],
                default_partitions: 3,
                default_replication_factor: 1,
            },
        }
    }

    #[test]
    fn every_node_applying_the_same_log_holds_the_same_cluster() {
        let log: Vec<Envelope> = vec![register(1, 1), register(0, 2), register(2, 1)]
            .into_iter()
            .chain([create("orders", 6), create("orders", 2)])
            .collect();
        let mut a = MetadataState::default();
        let mut b = MetadataState::default();
        let mut outcomes = Vec::new();
        for envelope in &log {
            let decoded = Envelope::decode(&envelope.encode()).unwrap();
            assert_eq!(&decoded, envelope);
            a.apply(&decoded);
            outcomes.push(b.apply(envelope).1);
        }
        assert_eq!(a, b);
        assert_eq!(a.cluster_id.as_deref(), Some("cluster-of-1"));
        let orders = &a.topics["orders"];
        assert_eq!(orders.topic_id, Uuid::from_u128(42));
        // Six partitions over three nodes: two on each.
        let mut per_node = BTreeMap::new();
        for &broker in &orders.partition_brokers {
            *per_node.entry(broker / BROKERS_PER_NODE).or_insert(0) += 1;
        }
        assert_eq!(per_node, BTreeMap::from([(0, 2), (1, 2), (2, 2)]));
        assert!(outcomes[3][0].result.is_ok());
        assert_eq!(
            outcomes[4][0].result.as_ref().unwrap_err().0,
            spindle_protocol::ErrorCode::TopicAlreadyExists
        );
    }

    #[test]
    fn a_restarted_node_re_registers_new_ports_and_a_bad_one_is_ignored() {
        let mut state = MetadataState::default();
        assert!(state.apply(&register(0, 2)).0);
        assert!(!state.apply(&register(0, 2)).0);
        let mut moved = register(0, 2);
        if let Command::RegisterNode { ports, .. } = &mut moved.command {
            ports[1] = 1234;
        }
        assert!(state.apply(&moved).0);
        assert_eq!(state.nodes[&0].ports, vec![9000, 1234]);
        assert!(!state.apply(&register(5, 0)).0);
        assert!(!state.nodes.contains_key(&5));
        assert!(Envelope::decode(b"{not json").is_err());
    }

    #[test]
    fn a_fenced_node_gets_no_new_partitions_until_it_registers_again() {
        let mut state = MetadataState::default();
        for node in 0..3 {
            state.apply(&register(node, 1));
        }
        let fence = |node| Envelope {
            origin: 0,
            request_id: 9,
            command: Command::FenceNode { node },
        };
        assert!(state.apply(&fence(2)).0);
        assert!(!state.apply(&fence(2)).0, "fencing twice changes nothing");
        assert!(!state.apply(&fence(7)).0, "an unknown node is not fenced");
        state.apply(&create("while-fenced", 4));
        let nodes: BTreeSet<u32> = state.topics["while-fenced"]
            .partition_brokers
            .iter()
            .map(|broker| broker / BROKERS_PER_NODE)
            .collect();
        assert_eq!(nodes, BTreeSet::from([0, 1]));
        assert!(state.apply(&register(2, 1)).0, "registering again unfences");
        assert!(state.fenced.is_empty());
    }

    #[test]
    fn a_restarted_node_leaves_every_in_sync_set_and_its_leaderships_move() {
        let mut state = MetadataState::default();
        for node in 0..3 {
            state.apply(&register(node, 1));
        }
        let mut replicated = create("replicated", 3);
        if let Command::Topics {
            default_replication_factor,
            ..
        } = &mut replicated.command
        {
            *default_replication_factor = 3;
        }
        state.apply(&replicated);
        let before = state.topics["replicated"].clone();
        let restarted_broker = 0; // node 0, core 0
        let led: Vec<i32> = (0..3)
            .filter(|&p| before.partition_brokers[p as usize] == restarted_broker)
            .collect();
        assert!(!led.is_empty());
        assert!((0..3).all(|p| before.isr(p).contains(&restarted_broker)));

        // The same process registering again changes nothing.
        assert!(!state.apply(&register(0, 1)).0);
        assert_eq!(state.topics["replicated"], before);

        // A new process of node 0: out of every in-sync set, still a replica everywhere.
        let mut restarted = register(0, 1);
        if let Command::RegisterNode { incarnation, .. } = &mut restarted.command {
            *incarnation = 2;
        }
        assert!(state.apply(&restarted).0);
        let after = state.topics["replicated"].clone();
        for p in 0..3 {
            assert!(!after.isr(p).contains(&restarted_broker), "partition {p}");
            let replicas: BTreeSet<u32> = std::iter::once(after.partition_brokers[p as usize])
                .chain(after.followers(p).iter().copied())
                .collect();
            assert!(replicas.contains(&restarted_broker), "partition {p}");
        }
        for &p in &led {
            assert_ne!(after.partition_brokers[p as usize], restarted_broker);
            assert_eq!(after.leader_epoch(p), before.leader_epoch(p) + 1);
        }
        assert!(!state.apply(&restarted).0, "registered once per process");
    }

    #[test]
    fn a_cluster_wide_unclean_election_default_elects_waiting_partitions() {
        let mut state = MetadataState::default();
        for node in 0..3 {
            state.apply(&register(node, 1));
        }
        let mut replicated = create("waiting", 1);
        if let Command::Topics {
            default_replication_factor,
            ..
        } = &mut replicated.command
        {
            *default_replication_factor = 3;
        }
        state.apply(&replicated);
        let fence = |node| Envelope {
            origin: 0,
            request_id: 9,
            command: Command::FenceNode { node },
        };
        // The first leader's node restarts out of sync; then both in-sync nodes go.
        let first = state.topics["waiting"].partition_brokers[0] / BROKERS_PER_NODE;
        state.apply(&fence(first));
        let mut back = register(first, 1);
        if let Command::RegisterNode { incarnation, .. } = &mut back.command {
            *incarnation = 2;
        }
        state.apply(&back);
        for node in (0..3).filter(|&node| node != first) {
            state.apply(&fence(node));
        }
        let waiting = state.topics["waiting"].clone();
        assert!(!state.is_live(waiting.partition_brokers[0]), "leaderless");

        let set_default = |value: &str| Envelope {
            origin: 0,
            request_id: 10,
            command: Command::Topics {
                request: ControllerRequest::AlterBrokerConfigs {
                    scope: None,
                    change: TopicConfigChange::Incremental(vec![ConfigOp::Set(
                        "unclean.leader.election.enable".into(),
                        value.into(),
                    )]),
                    validate_only: false,
                },
                topic_ids: vec![],
                default_partitions: 1,
                default_replication_factor: 1,
            },
        };
        let (changed, outcomes) = state.apply(&set_default("true"));
        assert!(changed);
        assert!(outcomes[0].result.is_ok());
        let elected = &state.topics["waiting"];
        assert_eq!(elected.partition_brokers[0] / BROKERS_PER_NODE, first);
        assert_eq!(elected.isr(0), vec![elected.partition_brokers[0]]);
        assert!(unclean_election_default(&state.broker_configs));
    }

    #[test]
    fn topic_changes_before_any_registration_are_refused() {
        let mut state = MetadataState::default();
        let (changed, outcomes) = state.apply(&create("t", 1));
        assert!(!changed);
        assert_eq!(
            outcomes[0].result.as_ref().unwrap_err().0,
            spindle_protocol::ErrorCode::BrokerNotAvailable
        );
    }
}
