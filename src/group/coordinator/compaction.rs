//! Group-log compaction: when the group log has grown past its live records, they are
//! rewritten into a fresh log that replaces the old one (crash-safe: the swap is two renames
//! that `recover_compaction` finishes or undoes at open). Runs on the coordinator core.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{records_batch, store_group};
use crate::group::GroupCoordinator;
use crate::group::records::{RecordKey, RecordValue};
use crate::storage::{DmaStorage, PartitionLog, StorageError};

impl GroupCoordinator {
    // ----- compaction -----

    /// Every live record, as compaction rewrites them.
    pub(super) fn live_records(&self) -> Vec<(RecordKey, RecordValue)> {
        let mut records = Vec::new();
        for group in self.groups.borrow().values() {
            records.push((
                RecordKey::Group {
                    group: group.group_id.clone(),
                },
                RecordValue::Group(store_group(group)),
            ));
        }
        for (group, stored) in self.offsets.borrow().iter() {
            for ((topic, partition), committed) in stored {
                records.push((
                    RecordKey::Offset {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    RecordValue::Offset(committed.clone()),
                ));
            }
        }
        records
    }

    /// Rewrites the log with only the live records once it is larger than
    /// `compact_bytes_min` and four times the live state.
    pub async fn maybe_compact(&self) {
        let Ok(log) = self.log() else { return };
        let size = log.size_bytes();
        if self.compacting.get()
            || size < self.compact_bytes_min
            || size < 4 * self.live_bytes_estimate.get()
        {
            return;
        }
        if let Err(e) = self.compact().await {
            tracing::error!(core = self.core, "group log compaction failed: {e}");
        }
    }

    /// Writes every live record to a fresh log beside the current one, makes it durable,
    /// then swaps directories (see [`recover_compaction`] for a crash in between).
    pub async fn compact(&self) -> Result<(), StorageError> {
        self.compacting.set(true);
        let result = self.compact_inner().await;
        self.compacting.set(false);
        result
    }

    pub(super) async fn compact_inner(&self) -> Result<(), StorageError> {
        while self.writes_in_flight.get() > 0 {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        let io = |what| move |e| StorageError::io(what, e);
        let fresh_dir = with_suffix(&self.dir, ".compact");
        let old_dir = with_suffix(&self.dir, ".old");
        let _ = std::fs::remove_dir_all(&fresh_dir);
        let fresh = PartitionLog::open(DmaStorage, &fresh_dir, self.log_config.clone()).await?;
        let records = self.live_records();
        let mut live_bytes = 0u64;
        for chunk in records.chunks(COMPACTION_RECORDS_PER_BATCH) {
            let batch = records_batch(chunk);
            live_bytes += batch.len() as u64;
            fresh.append(batch).await?;
        }
        fresh.wait_durable(fresh.log_end_offset()).await?;
        fresh.close().await?;
        let current = self.log.borrow_mut().take();
        if let Some(current) = current {
            current.close().await?;
        }
        std::fs::rename(&self.dir, &old_dir).map_err(io("rename group log aside"))?;
        sync_parent(&self.dir).map_err(io("sync group log directory"))?;
        std::fs::rename(&fresh_dir, &self.dir).map_err(io("install compacted group log"))?;
        sync_parent(&self.dir).map_err(io("sync group log directory"))?;
        std::fs::remove_dir_all(&old_dir).map_err(io("remove old group log"))?;
        let reopened = PartitionLog::open(DmaStorage, &self.dir, self.log_config.clone()).await?;
        *self.log.borrow_mut() = Some(reopened);
        self.live_bytes_estimate.set(live_bytes);
        tracing::info!(
            core = self.core,
            records = records.len(),
            "group log compacted"
        );
        Ok(())
    }
}

/// Records per batch when the whole state is rewritten by compaction.
pub(super) const COMPACTION_RECORDS_PER_BATCH: usize = 512;

pub(super) fn with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().expect("named").to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

pub(super) fn sync_parent(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir.parent().expect("has a parent"))?.sync_all()
}

/// Finishes or undoes a compaction a crash interrupted. The fresh log is fully durable
/// before the current one is renamed aside, so: current present -> drop leftovers; current
/// missing but fresh present -> install fresh; only the old one -> put it back.
pub fn recover_compaction(dir: &Path) -> std::io::Result<()> {
    let fresh = with_suffix(dir, ".compact");
    let old = with_suffix(dir, ".old");
    if dir.exists() {
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh)?;
        }
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
    } else if fresh.exists() {
        std::fs::rename(&fresh, dir)?;
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
    } else if old.exists() {
        std::fs::rename(&old, dir)?;
    }
    Ok(())
}
