//! Sparse per-segment indexes, in memory and in Kafka's file formats. Pure; owned by the
//! partition's core.
//!
//! - Offset index (`.index`): 8-byte entries, relative offset u32 + file position u32, both
//!   strictly increasing. Entry (r, p): the batch that starts at byte p has base offset
//!   `segment_base + r`.
//! - Time index (`.timeindex`): 12-byte entries, timestamp i64 + relative offset u32, both
//!   strictly increasing. Entry (t, r): every batch whose last offset is at most
//!   `segment_base + r` has a max timestamp of at most t.

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn new() -> OffsetIndex {
        OffsetIndex::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_offset, last_position)) = self.entries.last() {
            assert!(
                relative_offset > last_offset && position > last_position,
                "offset index must grow: ({last_offset}, {last_position}) then ({relative_offset}, {position})"
            );
        }
        self.entries.push((relative_offset, position));
    }

    /// The closest indexed batch at or before `relative_offset`: (relative offset, position).
    /// (0, 0), the segment's first batch, when none is.
    pub fn lookup(&self, relative_offset: u32) -> (u32, u32) {
        let after = self
            .entries
            .partition_point(|&(offset, _)| offset <= relative_offset);
        if after == 0 {
            (0, 0)
        } else {
            self.entries[after - 1]
        }
    }

    /// Drops entries for batches at or past `position` (truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self
            .entries
            .partition_point(|&(_, entry_position)| entry_position < position);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES);
        for &(offset, position) in &self.entries {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
        }
        out
    }

    /// Decodes an index file, or `None` if it is malformed or does not fit a segment of
    /// `segment_bytes` holding `offset_count` offsets (a stale or torn index is rebuilt).
    pub fn decode(bytes: &[u8], segment_bytes: u64, offset_count: u64) -> Option<OffsetIndex> {
        if !bytes.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = OffsetIndex::new();
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES) {
            let offset = u32::from_be_bytes(chunk[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(chunk[4..8].try_into().ok()?);
            if u64::from(position) >= segment_bytes || u64::from(offset) >= offset_count {
                return None;
            }
            if let Some(&(last_offset, last_position)) = index.entries.last()
                && (offset <= last_offset || position <= last_position)
            {
                return None;
            }
            index.entries.push((offset, position));
        }
        Some(index)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn new() -> TimeIndex {
        TimeIndex::default()
    }

    pub fn entries(&self) -> &[(i64, u32)] {
        &self.entries
    }

    pub fn last_timestamp(&self) -> Option<i64> {
        self.entries.last().map(|&(timestamp, _)| timestamp)
    }

    /// Records that batches up to `relative_offset` have timestamps of at most `timestamp`.
    /// Ignored unless both grow, so the index stays strictly increasing.
    pub fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) {
        match self.entries.last() {
            Some(&(last_timestamp, last_offset))
                if timestamp <= last_timestamp || relative_offset <= last_offset => {}
            _ => self.entries.push((timestamp, relative_offset)),
        }
    }

    /// The relative offset after which a search for the first batch with max timestamp
    /// `>= timestamp` must start: every batch at or before the returned offset is older.
    /// `None`: start at the segment's first batch.
    pub fn lookup(&self, timestamp: i64) -> Option<u32> {
        let older = self
            .entries
            .partition_point(|&(entry_timestamp, _)| entry_timestamp < timestamp);
        if older == 0 {
            None
        } else {
            Some(self.entries[older - 1].1)
        }
    }

    /// Drops entries that cover offsets at or past `relative_offset` (truncation).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries
            .partition_point(|&(_, offset)| offset < relative_offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for &(timestamp, offset) in &self.entries {
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        out
    }

    /// Decodes a time index file, or `None` if malformed or not fitting `offset_count`.
    pub fn decode(bytes: &[u8], offset_count: u64) -> Option<TimeIndex> {
        if !bytes.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
            return None;
        }
        let mut index = TimeIndex::new();
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().ok()?);
            let offset = u32::from_be_bytes(chunk[8..12].try_into().ok()?);
            if u64::from(offset) >= offset_count {
                return None;
            }
            if let Some(&(last_timestamp, last_offset)) = index.entries.last()
                && (timestamp <= last_timestamp || offset <= last_offset)
            {
                return None;
            }
            index.entries.push((timestamp, offset));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_at_every_boundary() {
        let mut index = OffsetIndex::new();
        index.push(10, 4096);
        index.push(20, 8192);
        index.push(30, 12288);
        assert_eq!(index.lookup(0), (0, 0));
        assert_eq!(index.lookup(9), (0, 0));
        assert_eq!(index.lookup(10), (10, 4096));
        assert_eq!(index.lookup(19), (10, 4096));
        assert_eq!(index.lookup(20), (20, 8192));
        assert_eq!(index.lookup(29), (20, 8192));
        assert_eq!(index.lookup(30), (30, 12288));
        assert_eq!(index.lookup(u32::MAX), (30, 12288));
        assert_eq!(OffsetIndex::new().lookup(5), (0, 0));
    }

    #[test]
    fn offset_index_round_trips_and_rejects_stale_files() {
        let mut index = OffsetIndex::new();
        for step in 1..100u32 {
            index.push(step * 3, step * 4096);
        }
        let bytes = index.encode();
        assert_eq!(bytes.len(), 99 * OFFSET_INDEX_ENTRY_BYTES);
        assert_eq!(
            OffsetIndex::decode(&bytes, 1 << 20, 1000),
            Some(index.clone())
        );
        // A position past the segment's end: the index belongs to a longer, older file.
        assert_eq!(OffsetIndex::decode(&bytes, 99 * 4096, 1000), None);
        assert_eq!(OffsetIndex::decode(&bytes, 1 << 20, 297), None);
        assert_eq!(
            OffsetIndex::decode(&bytes[..bytes.len() - 3], 1 << 20, 1000),
            None
        );
        let mut swapped = bytes.clone();
        swapped[..8].copy_from_slice(&bytes[8..16]);
        assert_eq!(OffsetIndex::decode(&swapped, 1 << 20, 1000), None);
    }

    #[test]
    fn offset_index_truncates_by_position() {
        let mut index = OffsetIndex::new();
        index.push(1, 100);
        index.push(2, 200);
        index.push(3, 300);
        index.truncate_to_position(200);
        assert_eq!(index.entries(), &[(1, 100)]);
    }

    #[test]
    fn time_lookup_and_round_trip() {
        let mut index = TimeIndex::new();
        index.maybe_push(100, 5);
        index.maybe_push(90, 6); // older timestamp: ignored
        index.maybe_push(200, 10);
        index.maybe_push(300, 10); // same offset: ignored
        index.maybe_push(300, 20);
        assert_eq!(index.entries(), &[(100, 5), (200, 10), (300, 20)]);
        assert_eq!(index.lookup(50), None);
        assert_eq!(index.lookup(100), None);
        assert_eq!(index.lookup(101), Some(5));
        assert_eq!(index.lookup(200), Some(5));
        assert_eq!(index.lookup(201), Some(10));
        assert_eq!(index.lookup(i64::MAX), Some(20));
        assert_eq!(TimeIndex::decode(&index.encode(), 21), Some(index.clone()));
        assert_eq!(TimeIndex::decode(&index.encode(), 20), None);
        index.truncate_to_offset(10);
        assert_eq!(index.entries(), &[(100, 5)]);
    }
}
