//! The group log of a cluster node: Kafka's `__consumer_offsets` design. A group's records
//! (committed offsets, metadata) live in the partition of the internal topic its id hashes
//! to, replicated like any partition, and its coordinator is that partition's leader. When
//! this core comes to lead a partition, its groups are loaded from the log (clients get
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile); when it stops leading, they are dropped here
//! (clients get NOT_COORDINATOR and look again). Runs on the coordinator core; the shard
//! tells it which partitions it leads after every metadata snapshot.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::BytesMut;

use super::{GroupCoordinator, Log, coordinator_core, read_log, records_batch};
use crate::group::records::{RecordKey, RecordValue};
use spindle_protocol::ErrorCode;

/// The internal topic holding every group's records in a cluster (Kafka's name, so tools
/// that hide internal topics hide it).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The partition of `__consumer_offsets` (of `partitions`) that holds `group_id`.
pub fn offsets_partition_of(group_id: &str, partitions: i32) -> i32 {
    coordinator_core(group_id, partitions.max(1) as u32) as i32
}

/// A `__consumer_offsets` partition this core leads, as the shard lends it: its log, and
/// an append that resolves once the batch is committed (Kafka's acks=all).
pub trait OffsetsPartition {
    fn log(&self) -> &Log;
    /// The leader epoch this core leads the partition in.
    fn leader_epoch(&self) -> i32;
    /// Appends `batch` as the leader and waits until every in-sync replica holds it (and
    /// they are at least `min.insync.replicas`). The error is what the group APIs answer
    /// (Kafka's mapping: too few replicas COORDINATOR_NOT_AVAILABLE, no longer the leader
    /// NOT_COORDINATOR, no answer in time REQUEST_TIMED_OUT).
    fn append_committed(
        &self,
        batch: BytesMut,
    ) -> Pin<Box<dyn Future<Output = Result<(), ErrorCode>> + '_>>;
}

/// A partition this core leads: loading its groups, or serving them.
pub(super) struct LedPartition {
    handle: Rc<dyn OffsetsPartition>,
    generation: u64,
    loaded: bool,
}

impl GroupCoordinator {
    /// Whether this core serves `group_id` now: always on a single node; in a cluster, once
    /// the partition holding it is loaded here.
    pub fn serves(&self, group_id: &str) -> Result<(), ErrorCode> {
        let Some(led) = &self.led else {
            return Ok(());
        };
        match led.borrow().get(&self.home_partition(group_id)) {
            Some(partition) if partition.loaded => Ok(()),
            Some(_) => Err(ErrorCode::CoordinatorLoadInProgress),
            None => Err(ErrorCode::NotCoordinator),
        }
    }

    /// The shard's word on which `__consumer_offsets` partitions (of `partitions`) this
    /// core leads now. Groups of partitions no longer led (or led in another epoch) are
    /// dropped; the partitions to load are returned, each with the generation to pass to
    /// [`Self::load_offsets_partition`].
    pub fn lead_offsets_partitions(
        &self,
        partitions: i32,
        now_led: Vec<(i32, Rc<dyn OffsetsPartition>)>,
    ) -> Vec<(i32, u64)> {
        let Some(led) = &self.led else {
            return Vec::new();
        };
        if partitions != self.offsets_partitions.get() {
            // Every group would hash elsewhere: start over.
            let all: Vec<i32> = led.borrow().keys().copied().collect();
            for partition in all {
                self.unload(partition);
            }
            self.offsets_partitions.set(partitions);
        }
        let stale: Vec<i32> = led
            .borrow()
            .iter()
            .filter(|(partition, held)| {
                !now_led.iter().any(|(p, handle)| {
                    p == *partition && handle.leader_epoch() == held.handle.leader_epoch()
                })
            })
            .map(|(partition, _)| *partition)
            .collect();
        for partition in stale {
            self.unload(partition);
        }
        let mut to_load = Vec::new();
        for (partition, handle) in now_led {
            if led.borrow().contains_key(&partition) {
                continue;
            }
            let generation = self.load_generations.get() + 1;
            self.load_generations.set(generation);
            led.borrow_mut().insert(
                partition,
                LedPartition {
                    handle,
                    generation,
                    loaded: false,
                },
            );
            to_load.push((partition, generation));
        }
        to_load
    }

    /// Reads the groups of `partition` from its log and serves them, unless this core
    /// stopped leading it meanwhile (`generation` is no longer the partition's).
    pub async fn load_offsets_partition(&self, partition: i32, generation: u64) {
        let Some(handle) = self.led_handle(partition, generation) else {
            return;
        };
        let read = read_log(self.core, handle.log()).await;
        let Some(led) = &self.led else { return };
        if self.led_handle(partition, generation).is_none() {
            return;
        }
        match read {
            Ok(state) => {
                let partitions = self.offsets_partitions.get();
                self.adopt(state, |group| {
                    offsets_partition_of(group, partitions) == partition
                });
                if let Some(held) = led.borrow_mut().get_mut(&partition) {
                    held.loaded = true;
                }
                tracing::info!(
                    core = self.core,
                    "{OFFSETS_TOPIC}-{partition}: groups loaded, coordinating them"
                );
            }
            Err(e) => {
                // Not served: the next snapshot this core applies tries again.
                tracing::error!(
                    core = self.core,
                    "{OFFSETS_TOPIC}-{partition}: loading groups failed: {e}"
                );
                led.borrow_mut().remove(&partition);
            }
        }
    }

    fn led_handle(&self, partition: i32, generation: u64) -> Option<Rc<dyn OffsetsPartition>> {
        let led = self.led.as_ref()?.borrow();
        led.get(&partition)
            .filter(|held| held.generation == generation)
            .map(|held| held.handle.clone())
    }

    /// Drops the groups of `partition`: another broker coordinates them now. Members
    /// waiting in a join or sync get their answer from the group's new coordinator.
    fn unload(&self, partition: i32) {
        let Some(led) = &self.led else { return };
        if led.borrow_mut().remove(&partition).is_none() {
            return;
        }
        let partitions = self.offsets_partitions.get();
        let elsewhere = |group: &str| offsets_partition_of(group, partitions) == partition;
        self.groups
            .borrow_mut()
            .retain(|group, _| !elsewhere(group));
        self.offsets
            .borrow_mut()
            .retain(|group, _| !elsewhere(group));
        tracing::info!(
            core = self.core,
            "{OFFSETS_TOPIC}-{partition}: no longer led here, its groups dropped"
        );
    }

    /// [`Self::write`] in a cluster: appended to the partition holding the groups, answered
    /// once committed. `NOT_COORDINATOR` if this core stopped leading the partition before
    /// the records were committed (the caller then leaves its state as it was).
    pub(super) async fn write_replicated(
        &self,
        partition: i32,
        records: &[(RecordKey, RecordValue)],
    ) -> Result<(), ErrorCode> {
        let (handle, generation) = {
            let led = self.led.as_ref().expect("a cluster coordinator").borrow();
            match led.get(&partition) {
                Some(held) if held.loaded => (held.handle.clone(), held.generation),
                Some(_) => return Err(ErrorCode::CoordinatorLoadInProgress),
                None => return Err(ErrorCode::NotCoordinator),
            }
        };
        handle.append_committed(records_batch(records)).await?;
        // Callers update the in-memory state right after this returns, with no await in
        // between: only while the partition is still this core's.
        match self.led_handle(partition, generation) {
            Some(_) => Ok(()),
            None => Err(ErrorCode::NotCoordinator),
        }
    }
}
