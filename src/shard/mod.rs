//! The shard: one core's root. It owns the partition logs this core leads (with their
//! idempotent-producer state), the consumer groups it coordinates, the producer ids it hands
//! out, the metadata snapshot it routes by, its limits, and its named task queues and
//! shutdown gate (`tasks`). Lives on exactly one core (`Rc`, `RefCell`, no locks); other
//! cores reach it only through its control inbox. The server layer drives it (listeners,
//! connections, handlers); nothing here knows about the wire.
//!
//! Invariant: a partition's log is open here iff the current snapshot says this core owns
//! it (and opening did not fail); a deleted topic's logs are deleted before a topic of the
//! same name can be opened again (the `partition.metadata` file records which topic id a
//! directory belongs to, so stale directories are recognised after a crash).

mod gauges;
pub mod log_limit;
pub mod metrics;
pub mod quotas;
pub mod replication;
mod roles;
pub mod tasks;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::Semaphore;
use uuid::Uuid;

use crate::cluster::control::ControlHandle;
use crate::cluster::metadata::{ClusterSnapshot, TopicMetadata};
use crate::cluster::topic_config::topic_log_config;
use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::producer::state::{decode_snapshot, encode_snapshot};
use crate::producer::{ProducerIdAllocator, ProducerStateTable};
use crate::shard::log_limit::LogLimit;
use crate::shard::replication::{LeaderState, Role};
use crate::shard::tasks::{ShardTasks, TaskKind};
use crate::storage::wait::Event;
use crate::storage::{CacheBudget, DmaStorage, LogConfig, PartitionLog, StorageError};
use spindle_protocol::RecordBatchHeader;

pub type Log = PartitionLog<DmaStorage>;

/// The file in each partition directory naming the topic id it belongs to (as Kafka's
/// `partition.metadata`).
pub const PARTITION_METADATA_FILE_NAME: &str = "partition.metadata";

/// Why a partition cannot be served here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionLookup {
    UnknownTopicOrPartition,
    /// Another core owns it.
    NotOwner,
    /// This core owns it but its log failed to open.
    Unavailable,
    /// The caller names an older leader epoch than this leader's (KIP-320): its metadata
    /// is stale.
    FencedLeaderEpoch,
    /// The caller names a newer leader epoch than this leader's: this broker has not
    /// learned it yet.
    UnknownLeaderEpoch,
}

/// KIP-320's check of the leader epoch a caller names (-1: none) against `epoch`, the one
/// this replica leads in: an older one is fenced (the caller's metadata is stale, or it
/// follows a leader since replaced), a newer one is not known here yet.
pub fn check_leader_epoch(current_leader_epoch: i32, epoch: i32) -> Result<(), PartitionLookup> {
    if current_leader_epoch < 0 || current_leader_epoch == epoch {
        Ok(())
    } else if current_leader_epoch < epoch {
        Err(PartitionLookup::FencedLeaderEpoch)
    } else {
        Err(PartitionLookup::UnknownLeaderEpoch)
    }
}

/// A partition replica this core holds: its log, its idempotent-producer state, and
/// whether it leads.
#[derive(Clone)]
pub struct OwnedPartition {
    pub log: Log,
    pub producers: Rc<RefCell<ProducerStateTable>>,
    pub role: Role,
    /// Client bytes and records through this replica, for the metrics.
    pub traffic: Rc<metrics::PartitionTraffic>,
}

impl OwnedPartition {
    /// The leader's view of its followers, if this replica leads a replicated partition.
    pub fn leader_state(&self) -> Option<&Rc<LeaderState>> {
        match &self.role {
            Role::Leader(state) => state.as_ref(),
            Role::Follower { .. } => None,
        }
    }
}

/// A replica this core follows, for its fetcher.
pub struct FollowedPartition {
    pub topic: String,
    pub partition: i32,
    pub leader: u32,
    /// The leader epoch this replica follows `leader` in.
    pub epoch: i32,
    pub log: Log,
}

struct TopicLogs {
    topic_id: Uuid,
    partitions: HashMap<i32, OwnedPartition>,
}

/// Least time between two log lines of one kind of repeated error.
const LOG_REPEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The producer-state snapshot in each partition directory.
pub const PRODUCER_SNAPSHOT_FILE_NAME: &str = "producer-state.snapshot";

pub struct Shard {
    pub core: u32,
    pub config: Arc<BrokerConfig>,
    pub control: ControlHandle,
    snapshot: RefCell<Arc<ClusterSnapshot>>,
    logs: RefCell<HashMap<String, TopicLogs>>,
    /// Request bytes held by this core's connections (backpressure before reading more).
    pub buffered_bytes: Rc<Semaphore>,
    /// Memory this core's logs may keep for serving reads, all partitions together.
    pub cache_budget: Rc<CacheBudget>,
    /// The consumer groups this core coordinates.
    pub groups: Rc<GroupCoordinator>,
    /// Producer ids this core hands out (InitProducerId).
    pub producer_ids: ProducerIdAllocator,
    /// Produce responses sent since start, for `--fault-drop-produce-response-every`.
    produce_responses: Cell<u64>,
    pub connections: Cell<usize>,
    /// Connections per client address, for `--max-connections-per-ip`.
    connections_by_ip: RefCell<HashMap<IpAddr, usize>>,
    /// Handler panics caught since start (each closed its connection).
    pub connection_panics: Cell<u64>,
    /// Fetches of a partition that failed with a storage error, since start, and the
    /// limit on logging them (a consumer retries many times a second).
    pub fetch_errors: Cell<u64>,
    pub fetch_error_log: LogLimit,
    /// Long-poll fetches waiting on this core now (`--max-parked-fetches-per-core`).
    pub parked_fetches: Cell<usize>,
    /// The limit on logging failed attempts to reopen a failed log.
    reopen_error_log: LogLimit,
    shutting_down: Cell<bool>,
    shutdown: Event,
    /// This core's task queues and the gate shutdown waits on.
    pub tasks: ShardTasks,
    /// This core's counters, which the metrics endpoint's thread reads.
    pub metrics: Arc<metrics::CoreMetrics>,
    /// Byte rates of the client ids that have quotas, on this core.
    pub quotas: Rc<quotas::QuotaTracker>,
}

impl Shard {
    pub fn new(
        core: u32,
        config: Arc<BrokerConfig>,
        control: ControlHandle,
        snapshot: Arc<ClusterSnapshot>,
        groups: Rc<GroupCoordinator>,
        producer_ids: ProducerIdAllocator,
        metrics: Arc<metrics::CoreMetrics>,
    ) -> Shard {
        let buffered = config.buffered_bytes_per_core_max as u64;
        let cache_budget = CacheBudget::new(config.cache_bytes_per_core);
        let quotas = Rc::new(quotas::QuotaTracker::new(config.quota_clients_per_core_max));
        metrics::install(metrics.clone());
        Shard {
            core,
            config,
            control,
            snapshot: RefCell::new(snapshot),
            logs: RefCell::new(HashMap::new()),
            buffered_bytes: Rc::new(Semaphore::new(buffered)),
            cache_budget,
            groups,
            producer_ids,
            produce_responses: Cell::new(0),
            connections: Cell::new(0),
            connections_by_ip: RefCell::new(HashMap::new()),
            connection_panics: Cell::new(0),
            fetch_errors: Cell::new(0),
            fetch_error_log: LogLimit::new(LOG_REPEAT_INTERVAL),
            parked_fetches: Cell::new(0),
            reopen_error_log: LogLimit::new(LOG_REPEAT_INTERVAL),
            shutting_down: Cell::new(false),
            shutdown: Event::default(),
            tasks: ShardTasks::new(core),
            quotas,
            metrics,
        }
    }

    pub fn snapshot(&self) -> Arc<ClusterSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// The log of a partition this core owns.
    pub fn log(&self, topic: &str, partition: i32) -> Result<Log, PartitionLookup> {
        self.partition(topic, partition).map(|owned| owned.log)
    }

    /// A partition this core leads, with its producer state: what clients may use.
    pub fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<OwnedPartition, PartitionLookup> {
        if let Some(owned) = self.replica(topic, partition) {
            return match owned.role {
                Role::Leader(_) => Ok(owned),
                Role::Follower { .. } => Err(PartitionLookup::NotOwner),
            };
        }
        let snapshot = self.snapshot.borrow();
        let Some(metadata) = snapshot.topic(topic) else {
            return Err(PartitionLookup::UnknownTopicOrPartition);
        };
        match snapshot.owner(metadata, partition) {
            None => Err(PartitionLookup::UnknownTopicOrPartition),
            Some(owner) if owner != snapshot.local_broker(self.core) => {
                Err(PartitionLookup::NotOwner)
            }
            Some(_) => Err(PartitionLookup::Unavailable),
        }
    }

    /// A partition this core leads, in the leader epoch the caller names
    /// (`current_leader_epoch` of Fetch, ListOffsets and OffsetForLeaderEpoch; -1 names
    /// none and skips the check), as Kafka's leaders check it.
    pub fn partition_in_epoch(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<OwnedPartition, PartitionLookup> {
        let owned = self.partition(topic, partition)?;
        let epoch = match owned.leader_state() {
            Some(state) => state.epoch,
            // One replica: the epoch the metadata gives it.
            None => self
                .snapshot
                .borrow()
                .topic(topic)
                .map_or(0, |metadata| metadata.leader_epoch(partition)),
        };
        check_leader_epoch(current_leader_epoch, epoch).map(|()| owned)
    }

    /// A replica this core holds, leading or following.
    pub fn replica(&self, topic: &str, partition: i32) -> Option<OwnedPartition> {
        self.logs
            .borrow()
            .get(topic)
            .and_then(|logs| logs.partitions.get(&partition))
            .cloned()
    }

    /// Whether this core's replica of `followed` still copies the same leader in the same
    /// epoch: an answer to a fetch sent before a role change is someone else's news.
    pub fn still_follows(&self, followed: &FollowedPartition) -> bool {
        self.replica(&followed.topic, followed.partition)
            .is_some_and(|owned| match owned.role {
                Role::Follower { leader, epoch } => {
                    leader == followed.leader && epoch == followed.epoch
                }
                Role::Leader(_) => false,
            })
    }

    /// Every replica this core holds (leading or following).
    fn all_partitions(&self) -> Vec<OwnedPartition> {
        self.logs
            .borrow()
            .values()
            .flat_map(|logs| logs.partitions.values().cloned())
            .collect()
    }

    /// Whether fault injection wants this produce response dropped (its connection closed
    /// after the append, so the client retries the batch).
    pub fn fault_drop_produce_response(&self) -> bool {
        let every = self.config.fault_drop_produce_response_every;
        if every == 0 {
            return false;
        }
        let count = self.produce_responses.get() + 1;
        self.produce_responses.set(count);
        count.is_multiple_of(every)
    }

    /// Counts a new connection from `ip`, or says why it is refused.
    pub fn admit_connection(&self, ip: IpAddr) -> Result<(), String> {
        if self.connections.get() >= self.config.connections_per_core_max {
            return Err(format!(
                "this core already serves {} connections (--max-connections-per-core)",
                self.connections.get()
            ));
        }
        let mut by_ip = self.connections_by_ip.borrow_mut();
        let from_ip = by_ip.entry(ip).or_insert(0);
        if *from_ip >= self.config.connections_per_ip_max {
            return Err(format!(
                "{ip} already holds {from_ip} connections to this core (--max-connections-per-ip)"
            ));
        }
        *from_ip += 1;
        self.connections.set(self.connections.get() + 1);
        self.metrics.connections.store(
            self.connections.get() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Forgets a connection that [`Shard::admit_connection`] counted.
    pub fn release_connection(&self, ip: IpAddr) {
        let mut by_ip = self.connections_by_ip.borrow_mut();
        let from_ip = by_ip
            .get_mut(&ip)
            .expect("a released connection was admitted");
        *from_ip -= 1;
        if *from_ip == 0 {
            by_ip.remove(&ip);
        }
        self.connections.set(self.connections.get() - 1);
        self.metrics.connections.store(
            self.connections.get() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Counts a handler panic that closed its connection.
    pub fn count_connection_panic(&self) {
        self.connection_panics.set(self.connection_panics.get() + 1);
        tracing::error!(
            core = self.core,
            panics = self.connection_panics.get(),
            "a connection closed after a panic in its request handler"
        );
    }

    /// Fault injection (`--fault-panic-client-id`): panics for a request of that client.
    pub fn fault_panic_for(&self, client_id: Option<&str>) {
        if let Some(wanted) = &self.config.fault_panic_client_id
            && client_id == Some(wanted.as_str())
        {
            panic!("fault injection: a request from client id {wanted}");
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.set(true);
        self.shutdown.notify();
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_started(&self) {
        loop {
            let listener = self.shutdown.listen();
            if self.shutting_down.get() {
                return;
            }
            listener.await;
        }
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Adopts a new snapshot: deletes the logs of topics that are gone (or were re-created
    /// with a new id), opens logs for partitions this core now owns. Older snapshots are
    /// ignored.
    pub async fn apply_snapshot(&self, snapshot: Arc<ClusterSnapshot>) {
        if snapshot.version < self.snapshot.borrow().version {
            return;
        }
        *self.snapshot.borrow_mut() = snapshot.clone();
        let gone: Vec<(String, TopicLogs)> = {
            let mut logs = self.logs.borrow_mut();
            let names: Vec<String> = logs
                .iter()
                .filter(|(name, topic_logs)| {
                    snapshot
                        .topic(name)
                        .is_none_or(|topic| topic.topic_id != topic_logs.topic_id)
                })
                .map(|(name, _)| name.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|name| logs.remove_entry(&name))
                .collect()
        };
        for (name, topic_logs) in gone {
            for (partition, owned) in topic_logs.partitions {
                if let Err(e) = owned.log.delete().await {
                    tracing::error!(core = self.core, "deleting {name}-{partition}: {e}");
                }
            }
            tracing::info!(core = self.core, "deleted the logs of topic {name}");
        }
        let local = snapshot.local_broker(self.core);
        // Once per snapshot, not per open log.
        let log_defaults = snapshot.log_defaults(&self.config.log, local);
        self.drop_replicas_moved_away(&snapshot, local).await;
        for topic in snapshot.topics.values() {
            for partition in 0..topic.partition_count() {
                let Some(leader) = snapshot.owner(topic, partition) else {
                    continue;
                };
                let followers = snapshot.followers(topic, partition);
                if leader != local && !followers.contains(&local) {
                    continue;
                }
                let open = self
                    .logs
                    .borrow()
                    .get(&topic.name)
                    .is_some_and(|logs| logs.partitions.contains_key(&partition));
                if open {
                    self.apply_topic_config(&log_defaults, topic, partition);
                    self.apply_role(&snapshot, topic, partition).await;
                    continue;
                }
                match self.open_log(topic, partition).await {
                    Ok(mut log) => {
                        let epoch = topic.leader_epoch(partition);
                        log.role = if leader == local {
                            let in_sync = snapshot.isr(topic, partition);
                            if let Err(e) = log.log.begin_leader_epoch(epoch).await {
                                tracing::error!(
                                    core = self.core,
                                    "{}-{partition}: recording leader epoch {epoch}: {e}",
                                    topic.name
                                );
                            }
                            let start = log.log.log_start_offset();
                            Role::Leader((!followers.is_empty()).then(|| {
                                Rc::new(LeaderState::new(
                                    epoch, &followers, &in_sync, &log.log, start,
                                ))
                            }))
                        } else {
                            // Readers here see only what the leader says is replicated.
                            log.log.set_replication_high_watermark(Some(0));
                            log.log.set_producer_appends(false);
                            Role::Follower { leader, epoch }
                        };
                        self.logs
                            .borrow_mut()
                            .entry(topic.name.clone())
                            .or_insert_with(|| TopicLogs {
                                topic_id: topic.topic_id,
                                partitions: HashMap::new(),
                            })
                            .partitions
                            .insert(partition, log);
                    }
                    Err(e) => {
                        tracing::error!(
                            core = self.core,
                            "opening {}-{partition} failed, partition unavailable: {e}",
                            topic.name
                        );
                    }
                }
            }
        }
    }

    /// The log defaults in force on this core's broker: the `spindle serve` flags under the
    /// snapshot's dynamic broker configs.
    fn log_defaults(&self) -> LogConfig {
        let snapshot = self.snapshot.borrow();
        snapshot.log_defaults(&self.config.log, snapshot.local_broker(self.core))
    }

    /// An open log takes its topic's configs as the snapshot has them now, over
    /// `log_defaults` (this broker's, dynamic configs included); a change reaches it from
    /// its next append, read or retention pass.
    fn apply_topic_config(&self, log_defaults: &LogConfig, topic: &TopicMetadata, partition: i32) {
        let logs = self.logs.borrow();
        let Some(owned) = logs
            .get(&topic.name)
            .and_then(|topic_logs| topic_logs.partitions.get(&partition))
        else {
            return;
        };
        let config = topic_log_config(log_defaults, &topic.configs);
        if *owned.log.config() != config
            && let Err(e) = owned.log.set_config(config)
        {
            tracing::error!(
                core = self.core,
                "{}-{partition}: new topic config refused: {e}",
                topic.name
            );
        }
    }

    async fn open_log(
        &self,
        topic: &TopicMetadata,
        partition: i32,
    ) -> Result<OwnedPartition, StorageError> {
        let dir = self.partition_dir(&topic.name, partition);
        claim_partition_dir(&dir, &topic.topic_id)
            .map_err(|e| StorageError::io("claim partition directory", e))?;
        let config = topic_log_config(&self.log_defaults(), &topic.configs);
        // Opened from the flush queue, so the log's flusher task runs there.
        let budget = self.cache_budget.clone();
        let log = self
            .tasks
            .run_in(TaskKind::Flush, async move {
                PartitionLog::open_with_cache_budget(DmaStorage, &dir, config, budget).await
            })
            .await?;
        let producers = rebuild_producer_state(&log).await?;
        Ok(OwnedPartition {
            log,
            producers: Rc::new(RefCell::new(producers)),
            role: Role::Leader(None),
            traffic: Rc::default(),
        })
    }

    /// Opens again, from what is on disk, every log whose writes failed (a full disk, an
    /// I/O error), so appends resume once the cause is gone. Recovery cuts whatever the
    /// failed writes left past the recovery point; nothing acknowledged is past it. A log
    /// that fails to open keeps its failed handle (reads go on) and is tried again later.
    /// Returns how many logs were reopened and how many are still failed.
    pub async fn reopen_failed_logs(&self) -> (usize, usize) {
        let failed: Vec<(Arc<TopicMetadata>, i32)> = {
            let snapshot = self.snapshot();
            self.logs
                .borrow()
                .iter()
                .flat_map(|(name, topic_logs)| {
                    topic_logs
                        .partitions
                        .iter()
                        .filter(|(_, owned)| owned.log.is_failed())
                        .filter_map(|(&partition, _)| {
                            Some((snapshot.topic(name)?.clone(), partition))
                        })
                })
                .collect()
        };
        let (mut reopened, mut still_failed) = (0, 0);
        for (topic, partition) in failed {
            match self.open_log(&topic, partition).await {
                Ok(mut fresh) => {
                    if let Some(slot) = self
                        .logs
                        .borrow_mut()
                        .get_mut(&topic.name)
                        .and_then(|logs| logs.partitions.get_mut(&partition))
                    {
                        // The replica keeps its role; the new log takes the old one's cap.
                        fresh.role = slot.role.clone();
                        match &fresh.role {
                            Role::Leader(Some(state)) => fresh
                                .log
                                .set_replication_high_watermark(Some(state.high_watermark())),
                            Role::Leader(None) => {}
                            Role::Follower { .. } => {
                                fresh.log.set_replication_high_watermark(Some(
                                    slot.log.high_watermark(),
                                ));
                                fresh.log.set_producer_appends(false);
                            }
                        }
                        *slot = fresh;
                    }
                    tracing::info!(
                        core = self.core,
                        "{}-{partition}: reopened after a write failure, appends resume",
                        topic.name
                    );
                    reopened += 1;
                }
                Err(e) => {
                    still_failed += 1;
                    if let Some(left_out) = self.reopen_error_log.admit(std::time::Instant::now()) {
                        tracing::warn!(
                            core = self.core,
                            left_out,
                            "{}-{partition} is still failed, retrying with backoff: {e}",
                            topic.name
                        );
                    }
                }
            }
        }
        (reopened, still_failed)
    }

    /// Rolls aged segments and applies retention on every log of this core.
    pub async fn housekeeping(&self, now_ms: i64) {
        for owned in self.all_partitions() {
            let log = &owned.log;
            log.roll_if_due(now_ms);
            if let Err(e) = log.apply_retention(now_ms).await {
                tracing::warn!(
                    core = self.core,
                    "retention on {}: {e}",
                    log.dir().display()
                );
            }
            snapshot_producer_state(&owned);
        }
    }

    /// Runs a cleaning pass on each compacted log of this core whose dirty ratio reached
    /// its `min.cleanable.dirty.ratio`, one log at a time.
    pub async fn clean_logs(&self, now_ms: i64) {
        for owned in self.all_partitions() {
            let log = &owned.log;
            if !log.compaction_due() {
                continue;
            }
            let started = std::time::Instant::now();
            match log.compact(now_ms).await {
                Ok(stats) => {
                    self.metrics.cleaned(&stats, started.elapsed());
                    tracing::debug!(
                        core = self.core,
                        "cleaned {}: {stats:?} in {:?}",
                        log.dir().display(),
                        started.elapsed()
                    );
                }
                Err(e) => tracing::warn!(core = self.core, "cleaning {}: {e}", log.dir().display()),
            }
        }
    }

    /// Flushes and closes every log (shutdown).
    pub async fn close_all(&self) {
        self.groups.close().await;
        let logs: Vec<(String, TopicLogs)> = self.logs.borrow_mut().drain().collect();
        for (name, topic_logs) in logs {
            for (partition, owned) in topic_logs.partitions {
                match owned.log.close().await {
                    Ok(()) => snapshot_producer_state(&owned),
                    Err(e) => tracing::error!(core = self.core, "closing {name}-{partition}: {e}"),
                }
            }
        }
    }
}

/// Loads the producer-state snapshot (if it is valid for this log) and replays the batches
/// after it, so recovery reads only what the snapshot does not cover.
async fn rebuild_producer_state(log: &Log) -> Result<ProducerStateTable, StorageError> {
    let path = log.dir().join(PRODUCER_SNAPSHOT_FILE_NAME);
    let snapshot = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| decode_snapshot(&text))
        .filter(|(_, next)| *next >= log.log_start_offset() && *next <= log.log_end_offset());
    let (mut table, mut next) =
        snapshot.unwrap_or_else(|| (ProducerStateTable::default(), log.log_start_offset()));
    // Everything this log holds, past a replication cap too: a promoted follower must
    // know the sequences of batches it holds but consumers cannot see yet, or a retry of
    // one of them would look like a gap.
    let end = log.local_high_watermark();
    while next < end {
        let batches = log.read_replica(next, 1 << 20).await?;
        if batches.is_empty() {
            break;
        }
        for batch in &batches {
            let header = RecordBatchHeader::decode(batch).map_err(StorageError::InvalidBatch)?;
            if header.next_offset() > next {
                table.replay(&header);
                next = header.next_offset();
            }
        }
    }
    Ok(table)
}

/// Writes the producer state as of the log end offset (atomic rename, not synced: a stale
/// or missing snapshot only means a longer replay, and one past the log's end is ignored).
/// Batches still being appended are left out; they are below the end offset only once
/// complete, and a snapshot taken meanwhile misses them, which the replay after the next
/// start cannot repair. So a snapshot is skipped while any reservation is pending.
fn snapshot_producer_state(owned: &OwnedPartition) {
    let table = owned.producers.borrow();
    if table.is_empty() || table.has_pending() {
        return;
    }
    let text = encode_snapshot(&table, owned.log.log_end_offset());
    drop(table);
    let path = owned.log.dir().join(PRODUCER_SNAPSHOT_FILE_NAME);
    let temporary = path.with_extension("tmp");
    if let Err(e) =
        std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &path))
    {
        tracing::warn!("producer snapshot {}: {e}", path.display());
    }
}

/// Makes sure `dir` belongs to `topic_id`: a directory left by a deleted topic of the same
/// name (a crash between the metadata change and the deletion) is removed first.
fn claim_partition_dir(dir: &std::path::Path, topic_id: &Uuid) -> std::io::Result<()> {
    use std::io::Write;
    let marker = dir.join(PARTITION_METADATA_FILE_NAME);
    let expected = format!("version: 0\ntopic_id: {}\n", topic_id.hyphenated());
    match std::fs::read_to_string(&marker) {
        Ok(text) if text == expected => return Ok(()),
        Ok(_) => {
            tracing::warn!(
                "{} belonged to another topic id; removing it",
                dir.display()
            );
            std::fs::remove_dir_all(dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::File::create(&marker)?;
    file.write_all(expected.as_bytes())?;
    file.sync_data()?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
