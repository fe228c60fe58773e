//! One core's broker state: the partition logs this core owns, the metadata snapshot it
//! routes by, and its limits. Lives on exactly one core (`Rc`, `RefCell`, no locks); other
//! cores reach it only through its control inbox.
//!
//! Invariant: a partition's log is open here iff the current snapshot says this core owns
//! it (and opening did not fail); a deleted topic's logs are deleted before a topic of the
//! same name can be opened again (the `partition.metadata` file records which topic id a
//! directory belongs to, so stale directories are recognised after a crash).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::Semaphore;
use uuid::Uuid;

use crate::cluster::control::ControlHandle;
use crate::cluster::metadata::{ClusterSnapshot, TopicMetadata, topic_log_config};
use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::storage::wait::Event;
use crate::storage::{DmaStorage, PartitionLog, StorageError};

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
}

struct TopicLogs {
    topic_id: Uuid,
    partitions: HashMap<i32, Log>,
}

pub struct Shard {
    pub core: u32,
    pub config: Arc<BrokerConfig>,
    pub control: ControlHandle,
    /// The port each core listens on, by core index (what Metadata advertises).
    pub core_ports: Arc<Vec<u16>>,
    snapshot: RefCell<Arc<ClusterSnapshot>>,
    logs: RefCell<HashMap<String, TopicLogs>>,
    /// Request bytes held by this core's connections (backpressure before reading more).
    pub buffered_bytes: Rc<Semaphore>,
    /// The consumer groups this core coordinates.
    pub groups: Rc<GroupCoordinator>,
    pub connections: Cell<usize>,
    shutting_down: Cell<bool>,
    shutdown: Event,
}

impl Shard {
    pub fn new(
        core: u32,
        config: Arc<BrokerConfig>,
        control: ControlHandle,
        core_ports: Arc<Vec<u16>>,
        snapshot: Arc<ClusterSnapshot>,
        groups: Rc<GroupCoordinator>,
    ) -> Shard {
        let buffered = config.buffered_bytes_per_core_max as u64;
        Shard {
            core,
            config,
            control,
            core_ports,
            snapshot: RefCell::new(snapshot),
            logs: RefCell::new(HashMap::new()),
            buffered_bytes: Rc::new(Semaphore::new(buffered)),
            groups,
            connections: Cell::new(0),
            shutting_down: Cell::new(false),
            shutdown: Event::default(),
        }
    }

    pub fn snapshot(&self) -> Arc<ClusterSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// The log of a partition this core owns.
    pub fn log(&self, topic: &str, partition: i32) -> Result<Log, PartitionLookup> {
        if let Some(log) = self
            .logs
            .borrow()
            .get(topic)
            .and_then(|logs| logs.partitions.get(&partition))
        {
            return Ok(log.clone());
        }
        let snapshot = self.snapshot.borrow();
        let Some(metadata) = snapshot.topic(topic) else {
            return Err(PartitionLookup::UnknownTopicOrPartition);
        };
        match snapshot.owner(metadata, partition) {
            None => Err(PartitionLookup::UnknownTopicOrPartition),
            Some(owner) if owner != self.core => Err(PartitionLookup::NotOwner),
            Some(_) => Err(PartitionLookup::Unavailable),
        }
    }

    /// Every log this core owns.
    pub fn all_logs(&self) -> Vec<Log> {
        self.logs
            .borrow()
            .values()
            .flat_map(|logs| logs.partitions.values().cloned())
            .collect()
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
            for (partition, log) in topic_logs.partitions {
                if let Err(e) = log.delete().await {
                    tracing::error!(core = self.core, "deleting {name}-{partition}: {e}");
                }
            }
            tracing::info!(core = self.core, "deleted the logs of topic {name}");
        }
        for topic in snapshot.topics.values() {
            for partition in 0..topic.partition_count() {
                if snapshot.owner(topic, partition) != Some(self.core) {
                    continue;
                }
                let open = self
                    .logs
                    .borrow()
                    .get(&topic.name)
                    .is_some_and(|logs| logs.partitions.contains_key(&partition));
                if open {
                    continue;
                }
                match self.open_log(topic, partition).await {
                    Ok(log) => {
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

    async fn open_log(&self, topic: &TopicMetadata, partition: i32) -> Result<Log, StorageError> {
        let dir = self.partition_dir(&topic.name, partition);
        claim_partition_dir(&dir, &topic.topic_id)
            .map_err(|e| StorageError::io("claim partition directory", e))?;
        let config = topic_log_config(&self.config.log, &topic.configs);
        PartitionLog::open(DmaStorage, &dir, config).await
    }

    /// Rolls aged segments and applies retention on every log of this core.
    pub async fn housekeeping(&self, now_ms: i64) {
        for log in self.all_logs() {
            log.roll_if_due(now_ms);
            if let Err(e) = log.apply_retention(now_ms).await {
                tracing::warn!(
                    core = self.core,
                    "retention on {}: {e}",
                    log.dir().display()
                );
            }
        }
    }

    /// Flushes and closes every log (shutdown).
    pub async fn close_all(&self) {
        self.groups.close().await;
        let logs: Vec<(String, TopicLogs)> = self.logs.borrow_mut().drain().collect();
        for (name, topic_logs) in logs {
            for (partition, log) in topic_logs.partitions {
                if let Err(e) = log.close().await {
                    tracing::error!(core = self.core, "closing {name}-{partition}: {e}");
                }
            }
        }
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
