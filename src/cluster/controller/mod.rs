//! The controller: the one owner of topic metadata. Runs as a task on core 0, takes topic
//! changes from any core through its inbox one at a time, persists the result, and pushes
//! the new snapshot to every core before answering, so a topic created through any core is
//! visible on all of them when CreateTopics returns.
//!
//! The decisions ([`apply_request`]) are pure; only [`store_metadata`] and the task touch
//! the outside world.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_channel::Receiver;
use uuid::Uuid;

use crate::cluster::control::{
    ControlHandle, ControllerMessage, ControllerRequest, NewTopic, TopicOutcome,
};
use crate::cluster::metadata::{
    BROKERS_PER_NODE, ClusterSnapshot, TopicMetadata, decode_broker_configs, decode_client_quotas,
    decode_metadata_file, encode_metadata_file, getrandom_bytes, new_topic_id,
    place_replicas_on_nodes, validate_topic_name,
};
use crate::cluster::topic_config::validate_topic_config;
use spindle_protocol::ErrorCode;

mod alter_configs;
mod elections;
pub mod reassign;

pub use alter_configs::apply_broker_config_request;
pub use elections::{
    elect_leaders_of_leaderless, elect_preferred_leaders, fail_over, unclean_election_enabled,
};
use elections::{elect_preferred_leaders_of, move_leadership};

/// The metadata file in the data directory.
pub const METADATA_FILE_NAME: &str = "spindle-metadata.txt";

/// Reads the persisted metadata, or starts a new cluster (new id) if there is none.
pub fn load_metadata(data_dir: &Path, cores: u32) -> Result<ClusterSnapshot, String> {
    let path = data_dir.join(METADATA_FILE_NAME);
    if let Err(e) = ensure_metadata_reserve(data_dir) {
        tracing::warn!("reserving room for metadata rewrites on a full disk: {e}");
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let (cluster_id, topics) =
                decode_metadata_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let quotas =
                decode_client_quotas(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let broker_configs =
                decode_broker_configs(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(ClusterSnapshot::new(1, cluster_id, cores, topics)
                .with_client_quotas(Arc::new(quotas))
                .with_broker_configs(Arc::new(broker_configs)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let snapshot = ClusterSnapshot::new(1, new_cluster_id(), cores, BTreeMap::new());
            store_metadata(data_dir, &snapshot).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(snapshot)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Most partitions one CreateTopics/CreatePartitions may ask for in a topic (and the
/// most `--default-partitions` may be).
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// Writes the metadata file atomically: a temporary file, fdatasync, rename, directory
/// sync. A crash leaves the old or the new file, never a mix. Blocking I/O on core 0's
/// control path; metadata changes are rare and small.
///
/// The rewrite needs room for a second copy. On a full disk the space held by the reserve
/// file is given up for it, so DeleteTopics (the way out of a full disk) still works; the
/// reserve is taken again at the next write that finds room.
pub fn store_metadata(data_dir: &Path, snapshot: &ClusterSnapshot) -> std::io::Result<()> {
    let text = encode_metadata_file(snapshot);
    let result = match write_metadata_file(data_dir, &text) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
            tracing::warn!("the disk is full: using the metadata reserve to rewrite the metadata");
            let _ = std::fs::remove_file(data_dir.join(METADATA_RESERVE_FILE_NAME));
            write_metadata_file(data_dir, &text)
        }
        other => other,
    };
    if result.is_ok() {
        // Best effort: without room now, the next metadata write tries again.
        let _ = ensure_metadata_reserve(data_dir);
    }
    result
}

/// A file whose preallocated blocks are set aside for rewriting the metadata on a full disk.
pub const METADATA_RESERVE_FILE_NAME: &str = ".metadata-reserve";
/// Space kept in reserve: far more than the metadata file of 10,000 topics needs.
const METADATA_RESERVE_BYTES: i64 = 4 << 20;

fn write_metadata_file(data_dir: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let path = data_dir.join(METADATA_FILE_NAME);
    let temporary: PathBuf = data_dir.join(format!("{METADATA_FILE_NAME}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&temporary, &path)?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Creates the metadata reserve with its blocks allocated, if it is missing.
pub fn ensure_metadata_reserve(data_dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let path = data_dir.join(METADATA_RESERVE_FILE_NAME);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() as i64 >= METADATA_RESERVE_BYTES) {
        return Ok(());
    }
    let file = std::fs::File::create(&path)?;
    // SAFETY: posix_fallocate on a descriptor this function owns.
    let error = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, METADATA_RESERVE_BYTES) };
    if error != 0 {
        drop(file);
        let _ = std::fs::remove_file(&path);
        return Err(std::io::Error::from_raw_os_error(error));
    }
    file.sync_all()
}

/// A cluster id in Kafka's shape: 16 random bytes, URL-safe base64 without padding.
pub(crate) fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    getrandom_bytes(&mut bytes);
    let value = u128::from_be_bytes(bytes);
    (0..22)
        .map(|i| ALPHABET[((value >> (i * 6)) & 63) as usize] as char)
        .collect()
}

/// What the controller needs to decide a change.
#[derive(Debug, Clone)]
pub struct ControllerLimits {
    /// `(node, cores)` of every node partitions may be placed on, sorted by node.
    pub nodes: Vec<(u32, u32)>,
    pub default_partitions: i32,
    /// Replicas of a topic created without a replication factor.
    pub default_replication_factor: i16,
    /// The cluster-wide `unclean.leader.election.enable` (a dynamic broker config).
    pub unclean_election_default: bool,
}

impl ControllerLimits {
    fn is_broker(&self, id: i32) -> bool {
        let Ok(id) = u32::try_from(id) else {
            return false;
        };
        let (node, core) = (id / BROKERS_PER_NODE, id % BROKERS_PER_NODE);
        self.nodes
            .iter()
            .any(|&(known, cores)| known == node && core < cores)
    }
}

fn error(
    code: ErrorCode,
    message: impl Into<String>,
) -> Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)> {
    Err((code, message.into()))
}

/// Decides `request` against `topics`: the new topic map (if anything changed) and one
/// outcome per topic, in request order. A created topic takes its id from `topic_ids`, so
/// every node of a quorum applying the same request decides the same.
pub fn apply_request(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    request: &ControllerRequest,
    limits: &ControllerLimits,
    topic_ids: &mut dyn FnMut() -> Uuid,
) -> (
    Option<BTreeMap<String, Arc<TopicMetadata>>>,
    Vec<TopicOutcome>,
) {
    let mut next = topics.clone();
    let mut changed = false;
    let mut outcomes = Vec::new();
    match request {
        ControllerRequest::CreateTopics {
            topics: new_topics,
            validate_only,
        } => {
            let mut seen = HashSet::new();
            for new_topic in new_topics {
                let result = if !seen.insert(new_topic.name.clone()) {
                    error(
                        ErrorCode::InvalidRequest,
                        "topic named twice in one request",
                    )
                } else {
                    create_topic(&next, new_topic, limits, topic_ids)
                };
                if let (Ok(Some(topic)), false) = (&result, validate_only) {
                    next.insert(topic.name.clone(), topic.clone());
                    changed = true;
                }
                outcomes.push(TopicOutcome {
                    name: new_topic.name.clone(),
                    result,
                });
            }
        }
        ControllerRequest::DeleteTopics { names } => {
            for name in names {
                let result = match next.remove(name) {
                    Some(topic) => {
                        changed = true;
                        Ok(Some(topic))
                    }
                    None => error(ErrorCode::UnknownTopicOrPartition, "no such topic"),
                };
                outcomes.push(TopicOutcome {
                    name: name.clone(),
                    result,
                });
            }
        }
        ControllerRequest::ElectPreferredLeaders { partitions }
        | ControllerRequest::ElectUncleanLeaders { partitions } => {
            let unclean = matches!(request, ControllerRequest::ElectUncleanLeaders { .. });
            let live = |broker: u32| limits.is_broker(broker as i32);
            for (name, indexes) in partitions {
                let wanted = |partition| indexes.contains(&partition);
                let result = match next.get(name) {
                    None => error(ErrorCode::UnknownTopicOrPartition, "no such topic"),
                    Some(topic) if unclean => {
                        Ok(elect_leaders_of_leaderless(topic, live, wanted, true))
                    }
                    Some(topic) => {
                        let one = BTreeMap::from([(name.clone(), topic.clone())]);
                        let elected = elect_preferred_leaders_of(&one, live, wanted);
                        Ok(elected.get(name).cloned())
                    }
                };
                if let Ok(Some(elected)) = &result {
                    next.insert(name.clone(), elected.clone());
                    changed = true;
                }
                outcomes.push(TopicOutcome {
                    name: name.clone(),
                    result,
                });
            }
        }
        ControllerRequest::ReassignPartitions { topics: requested } => {
            for (name, changes) in requested {
                let result = match next.get(name) {
                    None => error(ErrorCode::UnknownTopicOrPartition, "no such topic"),
                    Some(topic) => {
                        reassign::reassign_partitions(topic, changes, |b| limits.is_broker(b))
                    }
                };
                if let Ok(Some(topic)) = &result {
                    next.insert(name.clone(), topic.clone());
                    changed = true;
                }
                outcomes.push(TopicOutcome {
                    name: name.clone(),
                    result,
                });
            }
        }
        ControllerRequest::AlterIsr {
            topic,
            partition,
            leader,
            leader_epoch,
            isr,
        } => {
            let result = alter_isr(
                &next,
                topic,
                *partition,
                *leader,
                *leader_epoch,
                isr,
                limits,
            )
            .map(|altered| {
                // A reassignment ends once every replica asked for is in sync.
                altered.map(|topic| {
                    let mut finished = (*topic).clone();
                    let live = |broker: u32| limits.is_broker(broker as i32);
                    if reassign::finish_if_in_sync(&mut finished, *partition as usize, &live) {
                        Arc::new(finished)
                    } else {
                        topic
                    }
                })
            });
            if let Ok(Some(altered)) = &result {
                next.insert(topic.clone(), altered.clone());
                changed = true;
            }
            outcomes.push(TopicOutcome {
                name: topic.clone(),
                result,
            });
        }
        ControllerRequest::AlterTopicConfigs {
            topics: requested,
            validate_only,
        } => {
            let mut seen = HashSet::new();
            for (name, change) in requested {
                let result = if !seen.insert(name.clone()) {
                    error(
                        ErrorCode::InvalidRequest,
                        "topic named twice in one request",
                    )
                } else {
                    alter_configs::alter_topic_configs(&next, name, change).map(|altered| {
                        // Turning unclean election on lets a leaderless partition be led
                        // at once, as Kafka's controller does, not at the next failure.
                        altered.map(|topic| {
                            let unclean =
                                unclean_election_enabled(&topic, limits.unclean_election_default);
                            elect_leaders_of_leaderless(
                                &topic,
                                |broker| limits.is_broker(broker as i32),
                                |_| true,
                                unclean,
                            )
                            .unwrap_or(topic)
                        })
                    })
                };
                if let (Ok(Some(topic)), false) = (&result, validate_only) {
                    next.insert(name.clone(), topic.clone());
                    changed = true;
                }
                outcomes.push(TopicOutcome {
                    name: name.clone(),
                    result,
                });
            }
        }
        ControllerRequest::AlterClientQuotas { .. }
        | ControllerRequest::AlterBrokerConfigs { .. } => {
            // Not a topic change: the controller applies it to the snapshot's quotas or
            // broker configs (`apply_client_quotas`, `apply_broker_config_request`)
            // before it gets here.
            outcomes = request.refuse(
                ErrorCode::UnknownServerError,
                "client quotas and broker configs are not a topic change",
            );
        }
        ControllerRequest::CreatePartitions {
            topics: requested,
            validate_only,
        } => {
            for (name, count, assignments) in requested {
                let result = add_partitions(&next, name, *count, assignments, limits);
                if let (Ok(Some(topic)), false) = (&result, validate_only) {
                    next.insert(name.clone(), topic.clone());
                    changed = true;
                }
                outcomes.push(TopicOutcome {
                    name: name.clone(),
                    result,
                });
            }
        }
    }
    (changed.then_some(next), outcomes)
}

fn create_topic(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    new_topic: &NewTopic,
    limits: &ControllerLimits,
    topic_ids: &mut dyn FnMut() -> Uuid,
) -> Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)> {
    if let Err(reason) = validate_topic_name(&new_topic.name) {
        return error(ErrorCode::InvalidTopicException, reason);
    }
    if topics.contains_key(&new_topic.name) {
        return error(
            ErrorCode::TopicAlreadyExists,
            format!("topic '{}' already exists", new_topic.name),
        );
    }
    let partitions = if !new_topic.assignments.is_empty() {
        if new_topic.partitions != -1 || new_topic.replication_factor != -1 {
            return error(
                ErrorCode::InvalidRequest,
                "give either a replica assignment or partitions and replication factor",
            );
        }
        new_topic.assignments.len() as i32
    } else if new_topic.partitions == -1 {
        limits.default_partitions
    } else {
        new_topic.partitions
    };
    if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
        return error(
            ErrorCode::InvalidPartitions,
            format!("{partitions} partitions; must be between 1 and {PARTITIONS_PER_TOPIC_MAX}"),
        );
    }
    let live_nodes = limits.nodes.len();
    let replication_factor = match new_topic.replication_factor {
        -1 if !new_topic.assignments.is_empty() => new_topic.assignments[0].len(),
        -1 if limits.default_replication_factor as usize > live_nodes => {
            return error(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "the default replication factor {} exceeds the {live_nodes} live nodes",
                    limits.default_replication_factor
                ),
            );
        }
        -1 => limits.default_replication_factor.max(1) as usize,
        factor if factor >= 1 && factor as usize <= live_nodes => factor as usize,
        factor => {
            return error(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "replication factor {factor}: must be between 1 and the {live_nodes} live nodes (one replica per node)"
                ),
            );
        }
    };
    let replicas = match assigned_replicas(&new_topic.assignments, limits) {
        Ok(assigned) if assigned.is_empty() => (0..partitions)
            .map(|p| place_replicas_on_nodes(&new_topic.name, p, &limits.nodes, replication_factor))
            .collect(),
        Ok(assigned) => assigned,
        Err(reason) => return error(ErrorCode::InvalidReplicaAssignment, reason),
    };
    let (partition_brokers, partition_followers) = split_replicas(replicas);
    let mut configs = BTreeMap::new();
    for (key, value) in &new_topic.configs {
        let Some(value) = value else {
            return error(
                ErrorCode::InvalidConfig,
                format!("config '{key}' has a null value"),
            );
        };
        if let Err(reason) = validate_topic_config(key, value) {
            return error(ErrorCode::InvalidConfig, reason);
        }
        configs.insert(key.clone(), value.clone());
    }
    Ok(Some(Arc::new(TopicMetadata {
        name: new_topic.name.clone(),
        topic_id: topic_ids(),
        partition_brokers,
        partition_followers,
        partition_isr: Vec::new(),
        partition_epochs: Vec::new(),
        partition_preferred: Vec::new(),
        configs,
        partition_reassignments: BTreeMap::new(),
    })))
}

/// A manual assignment names, per partition, its replicas (leader first): running brokers
/// on distinct nodes, as many for every partition.
fn assigned_replicas(
    assignments: &[Vec<i32>],
    limits: &ControllerLimits,
) -> Result<Vec<Vec<u32>>, String> {
    let width = assignments.first().map_or(0, Vec::len);
    assignments
        .iter()
        .enumerate()
        .map(|(partition, replicas)| {
            let nodes: HashSet<i32> = replicas
                .iter()
                .map(|&b| b / BROKERS_PER_NODE as i32)
                .collect();
            if replicas.is_empty()
                || replicas.len() != width
                || nodes.len() != replicas.len()
                || !replicas.iter().all(|&broker| limits.is_broker(broker))
            {
                return Err(format!(
                    "partition {partition}: replicas {replicas:?}; expected {width} running brokers on distinct nodes"
                ));
            }
            Ok(replicas.iter().map(|&broker| broker as u32).collect())
        })
        .collect()
}

/// Leaders, and followers (empty when every partition has one replica).
fn split_replicas(replicas: Vec<Vec<u32>>) -> (Vec<u32>, Vec<Vec<u32>>) {
    let replicated = replicas.iter().any(|r| r.len() > 1);
    let leaders = replicas.iter().map(|r| r[0]).collect();
    let followers = if replicated {
        replicas.into_iter().map(|r| r[1..].to_vec()).collect()
    } else {
        Vec::new()
    };
    (leaders, followers)
}

/// A leader reports its in-sync replicas (Kafka's AlterPartition): accepted only from the
/// partition's current leader, naming only its replicas, itself included.
fn alter_isr(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    name: &str,
    partition: i32,
    leader: u32,
    leader_epoch: i32,
    isr: &[u32],
    limits: &ControllerLimits,
) -> Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)> {
    let Some(topic) = topics.get(name) else {
        return error(ErrorCode::UnknownTopicOrPartition, "no such topic");
    };
    let Ok(index) = usize::try_from(partition) else {
        return error(ErrorCode::UnknownTopicOrPartition, "no such partition");
    };
    if topic.partition_brokers.get(index) != Some(&leader)
        || topic.leader_epoch(partition) != leader_epoch
    {
        return error(
            ErrorCode::NotLeaderOrFollower,
            "only the partition's leader reports its in-sync replicas",
        );
    }
    let replicas: HashSet<u32> = std::iter::once(leader)
        .chain(topic.followers(partition).iter().copied())
        .collect();
    if !isr.contains(&leader) || !isr.iter().all(|broker| replicas.contains(broker)) {
        return error(
            ErrorCode::InvalidRequest,
            "in-sync replicas must be replicas, leader included",
        );
    }
    let current = topic.isr(partition);
    // A fenced node's replica may look caught up to its leader (its last fetch was recent
    // when the node died) but it is not in sync: it joins again only after its node
    // registers again (Kafka's KIP-841 ineligible replicas).
    if let Some(fenced) = isr
        .iter()
        .find(|&&broker| !current.contains(&broker) && !limits.is_broker(broker as i32))
    {
        return error(
            ErrorCode::IneligibleReplica,
            format!("broker {fenced} is not live: it cannot join the in-sync replicas"),
        );
    }
    if current == isr {
        return Ok(None);
    }
    let mut altered = (**topic).clone();
    spell_out_replication(&mut altered);
    altered.partition_isr[index] = isr.to_vec();
    Ok(Some(Arc::new(altered)))
}

/// Fills a replicated topic's in-sync sets and epochs for every partition (they start
/// implicit: every replica, epoch 0), so one partition's can change.
fn spell_out_replication(topic: &mut TopicMetadata) {
    let count = topic.partition_brokers.len();
    if topic.partition_isr.len() != count {
        topic.partition_isr = (0..count as i32).map(|p| topic.isr(p)).collect();
    }
    if topic.partition_epochs.len() != count {
        topic.partition_epochs = (0..count as i32).map(|p| topic.leader_epoch(p)).collect();
    }
    // Before any leader change: the leaders placed at creation are the preferred ones.
    if topic.partition_preferred.len() != count {
        topic.partition_preferred = (0..count as i32)
            .filter_map(|p| topic.preferred_leader(p))
            .collect();
    }
}

fn add_partitions(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    name: &str,
    count: i32,
    assignments: &[Vec<i32>],
    limits: &ControllerLimits,
) -> Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)> {
    let Some(topic) = topics.get(name) else {
        return error(ErrorCode::UnknownTopicOrPartition, "no such topic");
    };
    let current = topic.partition_count();
    if count <= current {
        return error(
            ErrorCode::InvalidPartitions,
            format!("topic has {current} partitions; the new count {count} must be larger"),
        );
    }
    if count > PARTITIONS_PER_TOPIC_MAX {
        return error(
            ErrorCode::InvalidPartitions,
            format!("{count} partitions exceeds {PARTITIONS_PER_TOPIC_MAX}"),
        );
    }
    let factor = topic.replication_factor();
    if factor > limits.nodes.len() {
        return error(
            ErrorCode::InvalidReplicationFactor,
            format!(
                "the topic keeps {factor} replicas but {} nodes are live",
                limits.nodes.len()
            ),
        );
    }
    let added = match assigned_replicas(assignments, limits) {
        Ok(assigned) if assigned.is_empty() => (current..count)
            .map(|p| place_replicas_on_nodes(name, p, &limits.nodes, factor))
            .collect::<Vec<_>>(),
        Ok(assigned) if assigned.len() as i32 == count - current && assigned[0].len() == factor => {
            assigned
        }
        Ok(_) => {
            return error(
                ErrorCode::InvalidReplicaAssignment,
                "the assignment must name every new partition, with the topic's replication factor",
            );
        }
        Err(reason) => return error(ErrorCode::InvalidReplicaAssignment, reason),
    };
    let mut grown = (**topic).clone();
    let (leaders, followers) = split_replicas(added);
    if !grown.partition_epochs.is_empty() {
        grown.partition_epochs.extend(leaders.iter().map(|_| 0));
    }
    if !grown.partition_preferred.is_empty() {
        grown.partition_preferred.extend(leaders.iter().copied());
    }
    if !grown.partition_isr.is_empty() {
        grown
            .partition_isr
            .extend(leaders.iter().zip(&followers).map(|(&leader, followers)| {
                std::iter::once(leader)
                    .chain(followers.iter().copied())
                    .collect::<Vec<u32>>()
            }));
    }
    grown.partition_brokers.extend(leaders);
    if factor > 1 {
        grown.partition_followers.extend(followers);
    }
    Ok(Some(Arc::new(grown)))
}

/// The controller task on core 0: one request at a time, each persisted and published to
/// every core before it is answered.
pub async fn run_controller(
    inbox: Receiver<ControllerMessage>,
    control: ControlHandle,
    data_dir: PathBuf,
    mut snapshot: Arc<ClusterSnapshot>,
    default_partitions: i32,
) {
    let limits = ControllerLimits {
        nodes: snapshot.node_cores(),
        default_partitions,
        default_replication_factor: 1,
        unclean_election_default: false,
    };
    while let Ok(message) = inbox.recv().await {
        let quotas = message.request.apply_client_quotas(&snapshot.client_quotas);
        let broker_configs =
            apply_broker_config_request(&message.request, &snapshot.broker_configs);
        let (candidate, mut outcomes) = match (quotas, broker_configs) {
            (Some((quotas, outcomes)), _) => (
                quotas.map(|quotas| {
                    snapshot
                        .with_topics(snapshot.topics.clone())
                        .with_client_quotas(Arc::new(quotas))
                }),
                outcomes,
            ),
            // One node: no replicas, so no unclean election waits on the default.
            (None, Some((configs, outcomes))) => (
                configs.map(|configs| {
                    snapshot
                        .with_topics(snapshot.topics.clone())
                        .with_broker_configs(Arc::new(configs))
                }),
                outcomes,
            ),
            (None, None) => {
                let (next, outcomes) = apply_request(
                    &snapshot.topics,
                    &message.request,
                    &limits,
                    &mut new_topic_id,
                );
                (next.map(|topics| snapshot.with_topics(topics)), outcomes)
            }
        };
        if let Some(candidate) = candidate {
            let candidate = Arc::new(candidate);
            match store_metadata(&data_dir, &candidate) {
                Ok(()) => {
                    control.publish(candidate.clone()).await;
                    snapshot = candidate;
                }
                Err(e) => {
                    tracing::error!("storing topic metadata failed: {e}");
                    for outcome in &mut outcomes {
                        if outcome.result.is_ok() {
                            outcome.result = error(
                                ErrorCode::KafkaStorageError,
                                format!("storing metadata failed: {e}"),
                            );
                        }
                    }
                }
            }
        }
        let _ = message.reply.send(outcomes).await;
    }
}

#[cfg(test)]
mod tests;
