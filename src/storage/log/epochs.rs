//! The log's leader epochs (see `storage::leader_epoch`): loaded at open, extended before
//! the first batch of a new epoch lands (a leader's own, or one copied from its leader),
//! cut with the log, and asked where an epoch ends. Runs on the log's core.

use std::path::Path;

use super::PartitionLog;
use super::flusher::{read_whole_file, write_whole_file};
use super::state::Inner;
use crate::storage::error::Result;
use crate::storage::io::Storage;
use crate::storage::leader_epoch::{LEADER_EPOCH_FILE_NAMES, LeaderEpochs};

/// The newer intact slot of `dir`'s leader epochs, as `(sequence, epochs)`.
pub(super) async fn read_leader_epochs<S: Storage>(
    storage: &S,
    dir: &Path,
) -> Option<(u64, LeaderEpochs)> {
    let mut newest: Option<(u64, LeaderEpochs)> = None;
    for name in LEADER_EPOCH_FILE_NAMES {
        let Some(slot) = read_whole_file(storage, &dir.join(name))
            .await
            .and_then(|bytes| LeaderEpochs::decode(&bytes))
        else {
            continue;
        };
        if newest
            .as_ref()
            .is_none_or(|(sequence, _)| slot.0 > *sequence)
        {
            newest = Some(slot);
        }
    }
    newest
}

/// The epochs a log opened with: what the file holds, less what lies past the recovered
/// end or before the start. A log with batches but no file (written before epochs were
/// kept) was written by a single-node broker, in epoch 0.
pub(super) fn opened_leader_epochs(
    stored: Option<LeaderEpochs>,
    log_start_offset: i64,
    log_end_offset: i64,
) -> LeaderEpochs {
    let mut epochs = stored.unwrap_or_default();
    epochs.truncate_from_end(log_end_offset);
    epochs.truncate_from_start(log_start_offset);
    if epochs.latest_epoch().is_none() && log_end_offset > log_start_offset {
        epochs.assign(0, log_start_offset);
    }
    epochs
}

/// Writes the epochs as they stand now to the slot the last write did not use.
pub(super) async fn write_leader_epochs<S: Storage>(inner: &Inner<S>) -> Result<()> {
    let sequence = inner.leader_epochs_sequence.get() + 1;
    inner.leader_epochs_sequence.set(sequence);
    let bytes = inner.leader_epochs.borrow().encode(sequence);
    let name = LEADER_EPOCH_FILE_NAMES[(sequence % 2) as usize];
    write_whole_file(&inner.storage, &inner.dir.join(name), &bytes).await
}

impl<S: Storage> PartitionLog<S> {
    /// Starts writing producers' batches in leader epoch `epoch` (this replica now leads):
    /// the epoch begins at the log end, recorded durably before any batch of it is taken.
    pub async fn begin_leader_epoch(&self, epoch: i32) -> Result<()> {
        self.inner.state.borrow_mut().leader_epoch = epoch;
        self.assign_leader_epoch(epoch, self.log_end_offset()).await
    }

    /// The newest leader epoch of the batches here (or of the epoch this replica leads).
    pub fn latest_leader_epoch(&self) -> Option<i32> {
        self.inner.leader_epochs.borrow().latest_epoch()
    }

    /// Where leader epoch `requested` ends in this log: `(epoch, end offset)` as
    /// OffsetForLeaderEpoch answers it (see `LeaderEpochs::end_offset_for`).
    pub fn end_offset_for_leader_epoch(&self, requested: i32) -> (i32, i64) {
        self.inner
            .leader_epochs
            .borrow()
            .end_offset_for(requested, self.log_end_offset())
    }

    /// The leader epoch that wrote `offset` (for ListOffsets answers).
    pub fn leader_epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.inner.leader_epochs.borrow().epoch_for_offset(offset)
    }

    /// Records, before a batch copied from the leader at the log end is appended, that its
    /// epoch starts there if it is newer than any here.
    pub(super) async fn note_replicated_epoch(&self, epoch: i32, base_offset: i64) -> Result<()> {
        if base_offset != self.log_end_offset() {
            return Ok(()); // refused as NotAtLogEnd by the append
        }
        self.assign_leader_epoch(epoch, base_offset).await
    }

    /// Records that `epoch` starts at `start_offset`, on disk before it returns if that is
    /// new. A failed write stops the log, as a failed segment write does.
    async fn assign_leader_epoch(&self, epoch: i32, start_offset: i64) -> Result<()> {
        let changed = self
            .inner
            .leader_epochs
            .borrow_mut()
            .assign(epoch, start_offset);
        if changed {
            let written = write_leader_epochs(&self.inner).await;
            if let Err(error) = &written {
                self.fail(error.clone());
            }
            written?;
        }
        Ok(())
    }
}
