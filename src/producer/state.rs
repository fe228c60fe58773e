//! Idempotent-producer state of one partition, as Kafka keeps it: per producer id, its
//! epoch and the sequence ranges (with offsets) of its last five batches. A retried batch
//! is recognised and answered with its original offset instead of being appended again; a
//! gap in sequences is OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is
//! INVALID_PRODUCER_EPOCH.
//!
//! Pure; owned by the partition's core next to its log. Rebuilt at open from a snapshot
//! plus the batches after it (see `encode_snapshot`).
//!
//! Invariant: a producer's cached batches are in sequence order and there are at most
//! [`BATCHES_PER_PRODUCER_MAX`].

use std::collections::{HashMap, VecDeque};

use spindle_protocol::{ErrorCode, RecordBatchHeader};

/// Kafka keeps the last five batches per producer (clients keep at most five in flight).
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CachedBatch {
    first_sequence: i32,
    last_sequence: i32,
    /// `None` while the batch is being appended.
    base_offset: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
}

/// What to do with a produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not from an idempotent producer: append, nothing to track.
    NotIdempotent,
    /// In sequence: append (reserved; call [`ProducerStateTable::complete`] or
    /// [`ProducerStateTable::abandon`]).
    Append,
    /// Already appended at this offset: answer success, do not append.
    Duplicate {
        base_offset: i64,
    },
    Reject(ErrorCode),
}

/// The sequence after `sequence` (Kafka's sequences wrap to 0 after `i32::MAX`).
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

fn last_sequence(header: &RecordBatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    (last % (i64::from(i32::MAX) + 1)) as i32
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Whether a batch is reserved but not yet appended.
    pub fn has_pending(&self) -> bool {
        self.producers
            .values()
            .any(|entry| entry.batches.iter().any(|b| b.base_offset.is_none()))
    }

    /// Checks a batch before it is appended; an `Append` answer reserves its sequence range
    /// so a retry arriving meanwhile is not appended twice.
    pub fn check(&mut self, header: &RecordBatchHeader) -> SequenceCheck {
        if header.producer_id < 0 {
            return SequenceCheck::NotIdempotent;
        }
        let first = header.base_sequence;
        let last = last_sequence(header);
        let reserved = CachedBatch {
            first_sequence: first,
            last_sequence: last,
            base_offset: None,
        };
        let Some(entry) = self.producers.get_mut(&header.producer_id) else {
            if first != 0 {
                // State lost (or never known): Kafka's answer lets the client reset.
                return SequenceCheck::Reject(ErrorCode::UnknownProducerId);
            }
            self.producers.insert(
                header.producer_id,
                ProducerEntry {
                    epoch: header.producer_epoch,
                    batches: VecDeque::from([reserved]),
                },
            );
            return SequenceCheck::Append;
        };
        if header.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        if header.producer_epoch > entry.epoch {
            if first != 0 {
                return SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber);
            }
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
            entry.batches.push_back(reserved);
            return SequenceCheck::Append;
        }
        if let Some(cached) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
        {
            return match cached.base_offset {
                Some(base_offset) => SequenceCheck::Duplicate { base_offset },
                // Its first copy is still being appended: the client retries later.
                None => SequenceCheck::Reject(ErrorCode::NotEnoughReplicas),
            };
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |latest| next_sequence(latest.last_sequence));
        if first != expected {
            return SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber);
        }
        entry.batches.push_back(reserved);
        while entry.batches.len() > BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
        SequenceCheck::Append
    }

    /// The reserved batch was appended at `base_offset`.
    pub fn complete(&mut self, header: &RecordBatchHeader, base_offset: i64) {
        if let Some(batch) = self.reserved(header) {
            batch.base_offset = Some(base_offset);
        }
    }

    /// The reserved batch was not appended (the log refused it): forget the reservation.
    pub fn abandon(&mut self, header: &RecordBatchHeader) {
        let last = last_sequence(header);
        if let Some(entry) = self.producers.get_mut(&header.producer_id) {
            entry.batches.retain(|b| {
                !(b.first_sequence == header.base_sequence
                    && b.last_sequence == last
                    && b.base_offset.is_none())
            });
            if entry.batches.is_empty() {
                self.producers.remove(&header.producer_id);
            }
        }
    }

    fn reserved(&mut self, header: &RecordBatchHeader) -> Option<&mut CachedBatch> {
        let last = last_sequence(header);
        self.producers
            .get_mut(&header.producer_id)?
            .batches
            .iter_mut()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last)
    }

    /// Replays a batch read back from the log (recovery).
    pub fn replay(&mut self, header: &RecordBatchHeader) {
        if header.producer_id < 0 || header.is_control() {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert(ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
            });
        if header.producer_epoch > entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(CachedBatch {
            first_sequence: header.base_sequence,
            last_sequence: last_sequence(header),
            base_offset: Some(header.base_offset),
        });
        while entry.batches.len() > BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
    }
}

const SNAPSHOT_MAGIC: &str = "spindle-producer-state 1";

/// A text snapshot of the table as of `next_offset` (every batch below it is included):
/// one line per producer, `id epoch first:last:offset ...`. Pending reservations are left
/// out.
pub fn encode_snapshot(table: &ProducerStateTable, next_offset: i64) -> String {
    let mut out = format!("{SNAPSHOT_MAGIC}\n{next_offset}\n");
    let mut ids: Vec<&i64> = table.producers.keys().collect();
    ids.sort_unstable();
    for id in ids {
        let entry = &table.producers[id];
        out.push_str(&format!("{id} {}", entry.epoch));
        for batch in &entry.batches {
            if let Some(offset) = batch.base_offset {
                out.push_str(&format!(
                    " {}:{}:{offset}",
                    batch.first_sequence, batch.last_sequence
                ));
            }
        }
        out.push('\n');
    }
    out
}

/// Parses [`encode_snapshot`]: `(table, next_offset)`, or `None` if anything is off (the
/// caller then rebuilds from the whole log).
pub fn decode_snapshot(text: &str) -> Option<(ProducerStateTable, i64)> {
    let mut lines = text.lines();
    if lines.next()? != SNAPSHOT_MAGIC {
        return None;
    }
    let next_offset = lines.next()?.parse().ok()?;
    let mut table = ProducerStateTable::default();
    for line in lines {
        let mut words = line.split(' ');
        let id: i64 = words.next()?.parse().ok()?;
        let epoch: i16 = words.next()?.parse().ok()?;
        let mut batches = VecDeque::new();
        for word in words {
            let mut parts = word.split(':');
            batches.push_back(CachedBatch {
                first_sequence: parts.next()?.parse().ok()?,
                last_sequence: parts.next()?.parse().ok()?,
                base_offset: Some(parts.next()?.parse().ok()?),
            });
        }
        if batches.len() > BATCHES_PER_PRODUCER_MAX {
            return None;
        }
        table.producers.insert(id, ProducerEntry { epoch, batches });
    }
    Some((table, next_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, records: i32) -> RecordBatchHeader {
        RecordBatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: records,
        }
    }

    #[test]
    fn in_order_duplicate_gap_and_epochs() {
        let mut table = ProducerStateTable::default();
        assert_eq!(
            table.check(&header(-1, -1, -1, 3)),
            SequenceCheck::NotIdempotent
        );
        let first = header(7, 0, 0, 3);
        assert_eq!(table.check(&first), SequenceCheck::Append);
        // A retry while the first copy is still being appended.
        assert_eq!(
            table.check(&first),
            SequenceCheck::Reject(ErrorCode::NotEnoughReplicas)
        );
        table.complete(&first, 100);
        assert_eq!(
            table.check(&first),
            SequenceCheck::Duplicate { base_offset: 100 }
        );
        let second = header(7, 0, 3, 2);
        assert_eq!(table.check(&second), SequenceCheck::Append);
        table.complete(&second, 103);
        // A gap.
        assert_eq!(
            table.check(&header(7, 0, 9, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        // An older epoch, then a newer one that must start at sequence 0.
        assert_eq!(
            table.check(&header(7, -1, 5, 1)),
            SequenceCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(
            table.check(&header(7, 1, 5, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(table.check(&header(7, 1, 0, 1)), SequenceCheck::Append);
        // An unknown producer not starting at 0.
        assert_eq!(
            table.check(&header(8, 0, 4, 1)),
            SequenceCheck::Reject(ErrorCode::UnknownProducerId)
        );
    }

    #[test]
    fn only_five_batches_are_remembered_and_abandon_frees_the_sequence() {
        let mut table = ProducerStateTable::default();
        for i in 0..7 {
            let batch = header(1, 0, i, 1);
            assert_eq!(table.check(&batch), SequenceCheck::Append);
            table.complete(&batch, i64::from(i) * 10);
        }
        assert_eq!(
            table.check(&header(1, 0, 6, 1)),
            SequenceCheck::Duplicate { base_offset: 60 }
        );
        assert_eq!(
            table.check(&header(1, 0, 2, 1)),
            SequenceCheck::Duplicate { base_offset: 20 }
        );
        assert_eq!(
            table.check(&header(1, 0, 1, 1)),
            SequenceCheck::Reject(ErrorCode::OutOfOrderSequenceNumber),
            "older than the last five"
        );
        let refused = header(1, 0, 7, 1);
        assert_eq!(table.check(&refused), SequenceCheck::Append);
        table.abandon(&refused);
        assert_eq!(
            table.check(&refused),
            SequenceCheck::Append,
            "retry after a refusal"
        );
    }

    #[test]
    fn sequences_wrap_and_snapshots_round_trip() {
        let mut table = ProducerStateTable::default();
        let mut replayed = header(3, 2, i32::MAX - 1, 2);
        replayed.base_offset = 40;
        table.replay(&replayed);
        assert_eq!(
            table.check(&header(3, 2, 0, 1)),
            SequenceCheck::Append,
            "wraps to 0"
        );
        table.complete(&header(3, 2, 0, 1), 42);
        let text = encode_snapshot(&table, 43);
        let (decoded, next_offset) = decode_snapshot(&text).unwrap();
        assert_eq!((decoded, next_offset), (table, 43));
        assert!(decode_snapshot("spindle-producer-state 1\n5\n1 x\n").is_none());
        assert!(decode_snapshot("junk").is_none());
    }
}
