//! One core's group coordinator: the consumer groups it coordinates, their committed
//! offsets, and the log of key/value records that makes both durable. On a single node
//! that log is the core's own (`data/.groups/core-N`, a `PartitionLog` replayed at start
//! and compacted when it grows well past the live state), holding the groups whose id
//! hashes to this core. In a cluster it is the `__consumer_offsets` partitions this core
//! leads (`replicated`): a group lives in the partition its id hashes to, and moves with
//! that partition's leadership when a node is lost.
//!
//! Runs on its core only (`Rc`, `RefCell`); a `RefCell` borrow is never held across an
//! await. Offset commits answer after their records are durable (fdatasync; in a cluster,
//! on every in-sync replica); group metadata (generation, members, assignments) is written
//! when a group settles.

mod compaction;
mod offsets;
mod replicated;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::group::records::{
    CommittedOffset, RecordKey, RecordValue, StoredGroup, StoredMember, decode_key, decode_value,
    encode_key, encode_value,
};
use crate::group::state::{
    Group, GroupConfig, GroupState, JoinRequest, JoinResult, Member, Reply, SyncResult,
};
use crate::storage::{DmaStorage, FlushPolicy, LogConfig, PartitionLog, StorageError};
use spindle_protocol::ErrorCode;
use spindle_protocol::record_batch::{build_batch, record_keys_and_values};

pub use compaction::recover_compaction;
use replicated::LedPartition;
pub use replicated::{OFFSETS_TOPIC, OffsetsPartition, offsets_partition_of};

type Log = PartitionLog<DmaStorage>;

/// A group's committed offsets by `(topic, partition)`.
type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// The core coordinating `group_id`: a pure function of the id, so every core answers
/// FindCoordinator the same way.
pub fn coordinator_core(group_id: &str, cores: u32) -> u32 {
    assert!(cores > 0);
    let hash = group_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % u64::from(cores)) as u32
}

/// Compact when the log is larger than this and several times the live records.
pub const GROUP_LOG_COMPACT_BYTES_MIN: u64 = 64 << 20;
/// Largest committed-offset metadata string accepted (Kafka `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
pub struct GroupCoordinator {
    pub core: u32,
    pub config: GroupConfig,
    dir: PathBuf,
    log_config: LogConfig,
    compact_bytes_min: u64,
    log: RefCell<Option<Log>>,
    groups: RefCell<HashMap<String, Group>>,
    /// Committed offsets per group: `(topic, partition) -> offset`.
    offsets: RefCell<HashMap<String, GroupOffsets>>,
    /// Bytes of live records at the last compaction or replay (what a rewrite would keep).
    live_bytes_estimate: Cell<u64>,
    compacting: Cell<bool>,
    /// Writes between their append and their durability; compaction waits for none.
    writes_in_flight: Cell<usize>,
    /// In a cluster: the `__consumer_offsets` partitions this core leads (`None`: a
    /// single node, the local log above holds every group).
    led: Option<RefCell<HashMap<i32, LedPartition>>>,
    /// Partitions of `__consumer_offsets` (a cluster only; 0 until it exists).
    offsets_partitions: Cell<i32>,
    /// Counts partition loads, so a load that lost its leadership meanwhile is dropped.
    load_generations: Cell<u64>,
}

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        flush: FlushPolicy::Always,
        write_buffer_bytes: 256 << 10,
        dirty_bytes_max: 4 << 20,
        cache_bytes_max: 1 << 20,
        preallocate_bytes: 4 << 20,
        ..LogConfig::default()
    }
}

impl GroupCoordinator {
    /// Opens (replaying) the group log of `core` under `data_dir`. Must run on that core's
    /// executor after the direct-I/O primer.
    pub async fn open(
        core: u32,
        data_dir: &Path,
        config: GroupConfig,
        compact_bytes_min: u64,
    ) -> Result<Rc<GroupCoordinator>, StorageError> {
        let dir = data_dir.join(".groups").join(format!("core-{core}"));
        recover_compaction(&dir)
            .map_err(|e| StorageError::io("recover group log compaction", e))?;
        let log = PartitionLog::open(DmaStorage, &dir, log_config()).await?;
        let coordinator = Rc::new(GroupCoordinator {
            core,
            config,
            dir,
            log_config: log_config(),
            compact_bytes_min,
            log: RefCell::new(Some(log.clone())),
            groups: RefCell::new(HashMap::new()),
            offsets: RefCell::new(HashMap::new()),
            live_bytes_estimate: Cell::new(0),
            compacting: Cell::new(false),
            writes_in_flight: Cell::new(0),
            led: None,
            offsets_partitions: Cell::new(0),
            load_generations: Cell::new(0),
        });
        let state = read_log(core, &log).await?;
        coordinator.adopt(state, |_| true);
        Ok(coordinator)
    }

    /// A coordinator for a cluster node: no local log; its groups are loaded from the
    /// `__consumer_offsets` partitions the shard hands it as it comes to lead them.
    pub fn in_offsets_topic(core: u32, config: GroupConfig) -> Rc<GroupCoordinator> {
        Rc::new(GroupCoordinator {
            core,
            config,
            dir: PathBuf::new(),
            log_config: log_config(),
            compact_bytes_min: u64::MAX,
            log: RefCell::new(None),
            groups: RefCell::new(HashMap::new()),
            offsets: RefCell::new(HashMap::new()),
            live_bytes_estimate: Cell::new(0),
            compacting: Cell::new(false),
            writes_in_flight: Cell::new(0),
            led: Some(RefCell::new(HashMap::new())),
            offsets_partitions: Cell::new(0),
            load_generations: Cell::new(0),
        })
    }

    /// Takes the groups and offsets read from a log, those `keep` accepts by group id.
    fn adopt(&self, state: LogState, keep: impl Fn(&str) -> bool) {
        let now = Instant::now();
        let mut live_bytes = 0u64;
        for (key, value) in state.records {
            live_bytes += (encode_key(&key).len() + encode_value(&value).len() + 16) as u64;
            match (key, value) {
                (
                    RecordKey::Offset {
                        group,
                        topic,
                        partition,
                    },
                    RecordValue::Offset(committed),
                ) if keep(&group) => {
                    self.offsets
                        .borrow_mut()
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), committed);
                }
                (RecordKey::Group { group }, RecordValue::Group(stored)) if keep(&group) => {
                    let restored = restore_group(&group, stored, now);
                    self.groups.borrow_mut().insert(group, restored);
                }
                _ => {}
            }
        }
        self.live_bytes_estimate
            .set(self.live_bytes_estimate.get() + live_bytes);
        tracing::info!(
            core = self.core,
            groups = self.groups.borrow().len(),
            "group log replayed"
        );
    }
}

/// The live records of a group log.
struct LogState {
    records: BTreeMap<RecordKey, RecordValue>,
}

/// Reads every record `log` holds here (what a follower copied included: a new leader's
/// log is the partition's from now on) and keeps the latest value of each key.
async fn read_log(core: u32, log: &Log) -> Result<LogState, StorageError> {
    {
        let mut state: BTreeMap<RecordKey, RecordValue> = BTreeMap::new();
        let mut offset = log.log_start_offset();
        let end = log.local_high_watermark();
        while offset < end {
            let batches = log.read_replica(offset, 1 << 20).await?;
            let Some(last) = batches.last() else { break };
            let header = spindle_protocol::RecordBatchHeader::decode(last)
                .map_err(StorageError::InvalidBatch)?;
            offset = header.next_offset();
            for batch in &batches {
                for (key, value) in record_keys_and_values(batch).unwrap_or_default() {
                    let Some(key) = key.and_then(decode_key) else {
                        continue;
                    };
                    match value.and_then(|v| decode_value(&key, v)) {
                        Some(RecordValue::Tombstone) => {
                            state.remove(&key);
                        }
                        Some(value) => {
                            state.insert(key, value);
                        }
                        None => tracing::warn!(core, "group log: undecodable value for {key:?}"),
                    }
                }
            }
        }
        Ok(LogState { records: state })
    }
}

impl GroupCoordinator {
    fn log(&self) -> Result<Log, StorageError> {
        self.log.borrow().clone().ok_or(StorageError::Closed)
    }

    /// The partition of the group log that holds `group_id` (0 on a single node).
    fn home_partition(&self, group_id: &str) -> i32 {
        match self.led {
            None => 0,
            Some(_) => offsets_partition_of(group_id, self.offsets_partitions.get()),
        }
    }

    /// Appends `records`, all of groups in `partition` of the group log, as one batch and
    /// waits until it is durable (in a cluster: on every in-sync replica). The error is
    /// the code the group APIs answer.
    async fn write(
        &self,
        partition: i32,
        records: &[(RecordKey, RecordValue)],
    ) -> Result<(), ErrorCode> {
        if records.is_empty() {
            return Ok(());
        }
        if self.led.is_some() {
            return self.write_replicated(partition, records).await;
        }
        // A compaction swaps the log; wait for it rather than write into the old one.
        while self.compacting.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let batch = records_batch(records);
        let result = async {
            let log = self.log()?;
            self.writes_in_flight.set(self.writes_in_flight.get() + 1);
            let result = async {
                let info = log.append(batch).await?;
                log.wait_durable(info.last_offset + 1).await
            }
            .await;
            self.writes_in_flight.set(self.writes_in_flight.get() - 1);
            result
        }
        .await;
        // Callers update the in-memory state right after this returns, with no await in
        // between, so a compaction that starts later sees it.
        result.map_err(|e| {
            tracing::error!(core = self.core, "writing the group log: {e}");
            ErrorCode::CoordinatorNotAvailable
        })
    }

    // ----- membership -----

    /// JoinGroup: an answer now, or a receiver for one.
    pub fn join(
        &self,
        group_id: &str,
        request: JoinRequest,
        new_member_id: impl FnOnce() -> String,
    ) -> Reply<JoinResult> {
        let mut groups = self.groups.borrow_mut();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        group.join(request, &self.config, new_member_id, Instant::now())
    }

    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Reply<SyncResult> {
        let mut groups = self.groups.borrow_mut();
        match groups.get_mut(group_id) {
            Some(group) => group.sync(member_id, generation_id, assignments, Instant::now()),
            None => Reply::Now(SyncResult {
                error: ErrorCode::UnknownMemberId,
                protocol_type: None,
                protocol_name: None,
                assignment: Bytes::new(),
            }),
        }
    }

    pub fn heartbeat(&self, group_id: &str, member_id: &str, generation_id: i32) -> ErrorCode {
        match self.groups.borrow_mut().get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, generation_id, Instant::now()),
            None => ErrorCode::UnknownMemberId,
        }
    }

    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<ErrorCode> {
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return vec![ErrorCode::UnknownMemberId; members.len()];
        };
        let now = Instant::now();
        members
            .iter()
            .map(|(member_id, instance)| {
                group.leave(member_id, instance.as_deref(), &self.config, now)
            })
            .collect()
    }

    /// Expires silent members and finished join phases; persists groups that settled.
    pub async fn tick(&self) {
        let now = Instant::now();
        for group in self.groups.borrow_mut().values_mut() {
            group.tick(&self.config, now);
        }
        self.persist_settled_groups().await;
        self.maybe_compact().await;
    }

    /// Writes the metadata of every group that changed and is now Stable or Empty.
    pub async fn persist_settled_groups(&self) {
        let mut by_partition: BTreeMap<i32, Vec<(RecordKey, RecordValue)>> = BTreeMap::new();
        {
            let mut groups = self.groups.borrow_mut();
            for group in groups
                .values_mut()
                .filter(|g| g.dirty && matches!(g.state, GroupState::Stable | GroupState::Empty))
            {
                group.dirty = false;
                by_partition
                    .entry(self.home_partition(&group.group_id))
                    .or_default()
                    .push((
                        RecordKey::Group {
                            group: group.group_id.clone(),
                        },
                        RecordValue::Group(store_group(group)),
                    ));
            }
        }
        for (partition, records) in by_partition {
            if let Err(code) = self.write(partition, &records).await {
                tracing::warn!(
                    core = self.core,
                    "writing group metadata to partition {partition}: {code:?}"
                );
            }
        }
    }

    // ----- administration -----

    /// `(group id, protocol type, state)` of every group on this core.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let mut listed: Vec<_> = self
            .groups
            .borrow()
            .values()
            .map(|g| {
                (
                    g.group_id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        listed
    }

    /// Runs `f` on the group, if it exists.
    pub fn with_group<T>(&self, group_id: &str, f: impl FnOnce(&Group) -> T) -> Option<T> {
        self.groups.borrow().get(group_id).map(f)
    }

    /// DeleteGroups: only an empty group (with its offsets) can be deleted.
    pub async fn delete(&self, group_id: &str) -> ErrorCode {
        let partitions: Vec<(String, i32)> = {
            let groups = self.groups.borrow();
            match groups.get(group_id) {
                None => return ErrorCode::GroupIdNotFound,
                Some(group) if !group.members.is_empty() => return ErrorCode::NonEmptyGroup,
                Some(_) => {}
            }
            self.offsets
                .borrow()
                .get(group_id)
                .map(|s| s.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut records: Vec<(RecordKey, RecordValue)> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                (
                    RecordKey::Offset {
                        group: group_id.to_string(),
                        topic,
                        partition,
                    },
                    RecordValue::Tombstone,
                )
            })
            .collect();
        records.push((
            RecordKey::Group {
                group: group_id.to_string(),
            },
            RecordValue::Tombstone,
        ));
        if let Err(code) = self.write(self.home_partition(group_id), &records).await {
            tracing::warn!(core = self.core, "deleting group {group_id}: {code:?}");
            return code;
        }
        self.groups.borrow_mut().remove(group_id);
        self.offsets.borrow_mut().remove(group_id);
        ErrorCode::None
    }

    pub async fn close(&self) {
        let log = self.log.borrow_mut().take();
        if let Some(log) = log
            && let Err(e) = log.close().await
        {
            tracing::error!(core = self.core, "closing the group log: {e}");
        }
    }

    /// Current size of the group log (for tests and metrics).
    pub fn log_size_bytes(&self) -> u64 {
        self.log.borrow().as_ref().map_or(0, Log::size_bytes)
    }
}

/// One record batch holding `records` as key/value pairs.
fn records_batch(records: &[(RecordKey, RecordValue)]) -> BytesMut {
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = records
        .iter()
        .map(|(key, value)| (encode_key(key), encode_value(value)))
        .collect();
    let pairs: Vec<(Option<&[u8]>, &[u8])> = encoded
        .iter()
        .map(|(key, value)| (Some(key.as_slice()), value.as_slice()))
        .collect();
    BytesMut::from(&build_batch(now_ms(), &pairs)[..])
}

fn store_group(group: &Group) -> StoredGroup {
    StoredGroup {
        generation_id: group.generation_id,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        leader: group.leader.clone(),
        members: group
            .members
            .iter()
            .map(|m| StoredMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout.as_millis() as u32,
                rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u32,
                protocols: m.protocols.clone(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

/// A group as it was persisted: Stable with its members (who must heartbeat within their
/// session timeout from now), or Empty.
fn restore_group(group_id: &str, stored: StoredGroup, now: Instant) -> Group {
    let mut group = Group::new(group_id);
    group.generation_id = stored.generation_id;
    group.protocol_type = stored.protocol_type;
    group.protocol_name = stored.protocol_name;
    let protocol_type = group.protocol_type.clone().unwrap_or_default();
    group.members = stored
        .members
        .into_iter()
        .map(|m| {
            Member::restored(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                Duration::from_millis(u64::from(m.session_timeout_ms)),
                Duration::from_millis(u64::from(m.rebalance_timeout_ms)),
                protocol_type.clone(),
                m.protocols,
                m.assignment,
                now,
            )
        })
        .collect();
    let leader_present = stored
        .leader
        .as_ref()
        .is_some_and(|leader| group.members.iter().any(|m| &m.member_id == leader));
    if group.members.is_empty() || !leader_present {
        group.members.clear();
        group.state = GroupState::Empty;
    } else {
        group.leader = stored.leader;
        group.state = GroupState::Stable;
    }
    group
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
