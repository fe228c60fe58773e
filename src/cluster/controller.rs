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
    BROKERS_PER_NODE, ClusterSnapshot, TopicMetadata, decode_metadata_file, encode_metadata_file,
    getrandom_bytes, new_topic_id, place_replicas_on_nodes, validate_topic_name,
};
use crate::cluster::topic_config::validate_topic_config;
use spindle_protocol::ErrorCode;

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
            Ok(ClusterSnapshot::new(1, cluster_id, cores, topics))
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
        ControllerRequest::AlterIsr {
            topic,
            partition,
            leader,
            leader_epoch,
            isr,
        } => {
            let result = alter_isr(&next, topic, *partition, *leader, *leader_epoch, isr);
            if let Ok(Some(altered)) = &result {
                next.insert(topic.clone(), altered.clone());
                changed = true;
            }
            outcomes.push(TopicOutcome {
                name: topic.clone(),
                result,
            });
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
        configs,
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
    if topic.isr(partition) == isr {
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
}

/// Kafka's response to a fenced broker: its replicas leave every in-sync set, and each
/// partition it led gets the first in-sync replica on a live node as its leader, with the
/// next leader epoch. A partition with no such replica keeps its leader and waits
/// (unclean election is not done). `live` says whether a broker's node is registered and
/// not fenced. Returns the changed topics.
pub fn fail_over(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    live: impl Fn(u32) -> bool,
) -> BTreeMap<String, Arc<TopicMetadata>> {
    let mut changed = BTreeMap::new();
    for (name, topic) in topics {
        if topic.partition_followers.is_empty() {
            continue;
        }
        let mut next = (**topic).clone();
        spell_out_replication(&mut next);
        let mut any = false;
        for index in 0..next.partition_brokers.len() {
            let partition = index as i32;
            let isr = next.isr(partition);
            let live_isr: Vec<u32> = isr.iter().copied().filter(|&b| live(b)).collect();
            let leader = next.partition_brokers[index];
            if live(leader) {
                if live_isr != isr {
                    next.partition_isr[index] = live_isr;
                    any = true;
                }
                continue;
            }
            let Some(&new_leader) = live_isr.first() else {
                continue;
            };
            let replicas: Vec<u32> = std::iter::once(leader)
                .chain(next.followers(partition).iter().copied())
                .collect();
            next.partition_brokers[index] = new_leader;
            next.partition_followers[index] =
                replicas.into_iter().filter(|&b| b != new_leader).collect();
            next.partition_isr[index] = live_isr;
            next.partition_epochs[index] += 1;
            any = true;
        }
        if any {
            changed.insert(name.clone(), Arc::new(next));
        }
    }
    changed
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
    };
    while let Ok(message) = inbox.recv().await {
        let (next, mut outcomes) = apply_request(
            &snapshot.topics,
            &message.request,
            &limits,
            &mut new_topic_id,
        );
        if let Some(topics) = next {
            let candidate = Arc::new(snapshot.with_topics(topics));
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
mod tests {
    use super::*;

    fn limits() -> ControllerLimits {
        ControllerLimits {
            nodes: vec![(0, 2)],
            default_partitions: 2,
            default_replication_factor: 1,
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
        let (topics, _) =
            apply_request(&BTreeMap::new(), &create(vec![new_topic("t", 2)]), limits());
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
        let three = ControllerLimits {
            nodes: vec![(0, 1), (1, 1), (2, 1)],
            default_partitions: 1,
            default_replication_factor: 1,
        };
        let mut topic = new_topic("r", 1);
        topic.replication_factor = 3;
        let (topics, _) = super::apply_request(
            &BTreeMap::new(),
            &create(vec![topic]),
            &three,
            &mut new_topic_id,
        );
        let topics = topics.unwrap();
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
            let (next, outcomes) =
                super::apply_request(&topics, &request, &three, &mut new_topic_id);
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
        assert_eq!(next.unwrap()["r"].isr(0), vec![leader, followers[1]]);
    }

    #[test]
    fn a_fenced_leader_is_replaced_by_the_first_live_in_sync_replica() {
        let three = ControllerLimits {
            nodes: vec![(0, 1), (1, 1), (2, 1)],
            default_partitions: 3,
            default_replication_factor: 3,
        };
        let mut topic = new_topic("r", 3);
        topic.replication_factor = 3;
        let (topics, _) = super::apply_request(
            &BTreeMap::new(),
            &create(vec![topic]),
            &three,
            &mut new_topic_id,
        );
        let topics = topics.unwrap();
        let before = topics["r"].clone();
        // Node 1 is fenced.
        let live = |broker: u32| broker / BROKERS_PER_NODE != 1;
        let after = &fail_over(&topics, live)["r"];
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
        let nobody = fail_over(&topics, |_| false);
        assert!(
            nobody
                .get("r")
                .is_none_or(|t| t.partition_brokers == before.partition_brokers)
        );
    }
}
