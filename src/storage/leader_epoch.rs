//! A partition's leader epochs (Kafka's `leader-epoch-checkpoint`, KIP-101/279): the first
//! offset each leader epoch wrote at. It answers "where does epoch E end in this log?",
//! which is how a returning replica finds the point where its log and the leader's stop
//! agreeing (OffsetForLeaderEpoch, and a replica fetch's `last_fetched_epoch`).
//!
//! Stored in two slot files written in turn, each with a sequence number and a CRC (as the
//! recovery point), and written before the first batch of a new epoch is appended, so the
//! file never misses an epoch the log holds; entries past the log's end after a crash are
//! dropped at open. Pure here; the log writes the slots from the core that owns it.

use spindle_protocol::record_batch::crc32c;

/// The two slot files in a partition directory.
pub const LEADER_EPOCH_FILE_NAMES: [&str; 2] = ["leader-epoch.0", "leader-epoch.1"];

/// Entries kept: a partition changes leaders rarely; past this many the oldest go (their
/// offsets are then answered as part of the oldest kept epoch, which only makes a
/// returning replica cut back further than it needs).
pub const LEADER_EPOCHS_MAX: usize = 256;

/// Kafka's "no epoch" and "no offset" answers.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

/// One epoch and the first offset written in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The epochs of one log, oldest first: epochs strictly rising, start offsets rising.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<EpochStart>,
}

impl LeaderEpochs {
    pub fn entries(&self) -> &[EpochStart] {
        &self.entries
    }

    /// The newest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|entry| entry.epoch)
    }

    /// Records that `epoch` starts at `start_offset`; whether that changed anything. An
    /// epoch not above the newest is ignored (it is already known, or stale). A newer epoch
    /// starting where an older one did replaces it: that one wrote nothing.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|last| last.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochStart {
            epoch,
            start_offset,
        });
        if self.entries.len() > LEADER_EPOCHS_MAX {
            self.entries.remove(0);
        }
        self.assert_ordered();
        true
    }

    /// `(epoch, end offset)` for a replica asking where `requested` ends, as Kafka's
    /// `LeaderEpochFileCache.endOffsetFor` answers it: the newest epoch at or below
    /// `requested` and the first offset of the epoch after it (`log_end_offset` if it is the
    /// newest). An epoch newer than any here is undefined; one older than all of them ends
    /// where the first one starts.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested < 0 {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(next) = self
            .entries
            .iter()
            .position(|entry| entry.epoch > requested)
        else {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        };
        let end = self.entries[next].start_offset;
        match next.checked_sub(1) {
            Some(floor) => (self.entries[floor].epoch, end),
            None => (requested, end),
        }
    }

    /// The epoch that wrote `offset`: the newest one starting at or below it (`None` below
    /// the first, or with no epochs).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .take_while(|entry| entry.start_offset <= offset)
            .last()
            .map(|entry| entry.epoch)
    }

    /// Forgets epochs that start at or after `end_offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|entry| entry.start_offset < end_offset);
        self.entries.len() != before
    }

    /// Forgets what lies below `start_offset` (retention): the epoch in force there now
    /// starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) {
        let below = self
            .entries
            .iter()
            .take_while(|entry| entry.start_offset <= start_offset)
            .count();
        if below > 0 {
            self.entries.drain(..below - 1);
            self.entries[0].start_offset = start_offset;
        }
        self.assert_ordered();
    }

    fn assert_ordered(&self) {
        debug_assert!(
            self.entries
                .windows(2)
                .all(|pair| pair[0].epoch < pair[1].epoch
                    && pair[0].start_offset < pair[1].start_offset),
            "leader epochs out of order: {:?}",
            self.entries
        );
    }

    /// `sequence: u64 | count: u32 | (epoch: i32, start: i64) * count | crc32c: u32`,
    /// big-endian; the CRC covers everything before it.
    pub fn encode(&self, sequence: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 12 * self.entries.len());
        out.extend_from_slice(&sequence.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for entry in &self.entries {
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.start_offset.to_be_bytes());
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// A slot's `(sequence, epochs)`, `None` if torn, empty, out of order or foreign. The
    /// count is checked against the bytes present before anything is sized by it.
    pub fn decode(bytes: &[u8]) -> Option<(u64, LeaderEpochs)> {
        let sequence = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let count = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?) as usize;
        if count > LEADER_EPOCHS_MAX {
            return None;
        }
        let body_end = 12 + 12 * count;
        let crc = u32::from_be_bytes(bytes.get(body_end..body_end + 4)?.try_into().ok()?);
        if crc32c(&bytes[..body_end]) != crc {
            return None;
        }
        let entries: Vec<EpochStart> = bytes[12..body_end]
            .chunks_exact(12)
            .map(|chunk| EpochStart {
                epoch: i32::from_be_bytes(chunk[..4].try_into().expect("4 bytes")),
                start_offset: i64::from_be_bytes(chunk[4..].try_into().expect("8 bytes")),
            })
            .collect();
        let ordered = entries.iter().all(|e| e.epoch >= 0 && e.start_offset >= 0)
            && entries.windows(2).all(|pair| {
                pair[0].epoch < pair[1].epoch && pair[0].start_offset < pair[1].start_offset
            });
        ordered.then_some((sequence, LeaderEpochs { entries }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(entries: &[(i32, i64)]) -> LeaderEpochs {
        let mut epochs = LeaderEpochs::default();
        for &(epoch, start) in entries {
            assert!(epochs.assign(epoch, start));
        }
        epochs
    }

    #[test]
    fn end_offsets_follow_kafkas_answers() {
        let epochs = epochs(&[(2, 0), (4, 100), (7, 250)]);
        // The newest epoch ends at the log end.
        assert_eq!(epochs.end_offset_for(7, 300), (7, 300));
        // An epoch ends where the next one starts.
        assert_eq!(epochs.end_offset_for(4, 300), (4, 250));
        assert_eq!(epochs.end_offset_for(2, 300), (2, 100));
        // An epoch this log never had answers with the newest one below it.
        assert_eq!(epochs.end_offset_for(5, 300), (4, 250));
        assert_eq!(epochs.end_offset_for(3, 300), (2, 100));
        // Older than all of them: it ends where the first begins.
        assert_eq!(epochs.end_offset_for(1, 300), (1, 0));
        // Newer than all, or none asked: undefined.
        assert_eq!(epochs.end_offset_for(8, 300), (-1, -1));
        assert_eq!(epochs.end_offset_for(-1, 300), (-1, -1));
        assert_eq!(LeaderEpochs::default().end_offset_for(0, 10), (-1, -1));
        assert_eq!(epochs.epoch_for_offset(0), Some(2));
        assert_eq!(epochs.epoch_for_offset(249), Some(4));
        assert_eq!(epochs.epoch_for_offset(250), Some(7));
        assert_eq!(LeaderEpochs::default().epoch_for_offset(3), None);
    }

    #[test]
    fn assignments_ignore_stale_epochs_and_replace_empty_ones() {
        let mut epochs = epochs(&[(1, 0), (3, 40)]);
        assert!(!epochs.assign(3, 50), "the same epoch again");
        assert!(!epochs.assign(2, 60), "an older epoch");
        // Epoch 3 wrote nothing before epoch 5 began at the same offset.
        assert!(epochs.assign(5, 40));
        assert_eq!(
            epochs.entries(),
            &[
                EpochStart {
                    epoch: 1,
                    start_offset: 0
                },
                EpochStart {
                    epoch: 5,
                    start_offset: 40
                }
            ]
        );
    }

    #[test]
    fn cuts_at_either_end() {
        let mut epochs = epochs(&[(1, 0), (3, 40), (6, 90)]);
        assert!(epochs.truncate_from_end(90));
        assert_eq!(epochs.latest_epoch(), Some(3));
        assert!(!epochs.truncate_from_end(95));
        epochs.truncate_from_start(50);
        assert_eq!(
            epochs.entries(),
            &[EpochStart {
                epoch: 3,
                start_offset: 50
            }]
        );
        epochs.truncate_from_start(10);
        assert_eq!(epochs.entries().len(), 1);
    }

    #[test]
    fn slots_round_trip_and_reject_torn_or_lying_bytes() {
        let epochs = epochs(&[(0, 0), (2, 17), (9, 4_000)]);
        let bytes = epochs.encode(41);
        assert_eq!(LeaderEpochs::decode(&bytes), Some((41, epochs.clone())));
        for cut in 0..bytes.len() {
            assert_eq!(LeaderEpochs::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[14] ^= 1;
        assert_eq!(LeaderEpochs::decode(&flipped), None);
        // A count far past the bytes present sizes nothing.
        let mut huge = bytes;
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(LeaderEpochs::decode(&huge), None);
    }

    #[test]
    fn the_oldest_epochs_go_past_the_bound() {
        let mut epochs = LeaderEpochs::default();
        for epoch in 0..(LEADER_EPOCHS_MAX as i32 + 10) {
            epochs.assign(epoch, i64::from(epoch) * 10);
        }
        assert_eq!(epochs.entries().len(), LEADER_EPOCHS_MAX);
        assert_eq!(epochs.entries()[0].epoch, 10);
        let (sequence, decoded) = LeaderEpochs::decode(&epochs.encode(1)).unwrap();
        assert_eq!((sequence, decoded), (1, epochs));
    }
}
