//! Per-log settings, with Kafka's names and defaults where Kafka has one. Validated once when
//! a log opens; the hot path trusts them.

use std::time::Duration;

/// Direct-I/O block size every write is aligned to. Devices here report 512 or 4096; 4096
/// satisfies both.
pub const BLOCK_BYTES: u64 = 4096;

/// When appended bytes are made durable with `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// After every write round. Concurrent appenders share one fdatasync (group commit) and
    /// the high watermark only covers durable data.
    Always,
    /// When `interval` has passed or `bytes` have been written since the last sync.
    Interval { interval: Duration, bytes: u64 },
    /// Never by itself (callers may still ask with `wait_durable`); data reaches the device
    /// by direct I/O and survives a process crash, not a power loss.
    Never,
}

/// What happens to old data (Kafka `cleanup.policy`): deleted by retention, compacted to
/// the latest record per key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };

    /// Kafka's spellings: `delete`, `compact`, or both separated by a comma in any order.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in value.split(',').map(str::trim) {
            match part {
                "delete" if !policy.delete => policy.delete = true,
                "compact" if !policy.compact => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll to a new segment before this size is exceeded (Kafka `segment.bytes`).
    pub segment_bytes: u64,
    /// Roll a segment older than this (Kafka `segment.ms`).
    pub segment_ms: i64,
    /// Delete old segments while the log is larger than this; -1 for no limit (Kafka
    /// `retention.bytes`).
    pub retention_bytes: i64,
    /// Delete segments whose newest timestamp is older than this; -1 for no limit (Kafka
    /// `retention.ms`).
    pub retention_ms: i64,
    /// About one offset-index entry per this many bytes (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u64,
    pub flush: FlushPolicy,
    /// Size of each direct-I/O write buffer; appends are coalesced into these.
    pub write_buffer_bytes: usize,
    /// Direct writes of full buffers the flusher keeps in flight: enough to keep the device
    /// busy while earlier ones complete.
    pub writes_in_flight_max: usize,
    /// Appended-but-unwritten bytes above which `append` waits (backpressure).
    pub dirty_bytes_max: usize,
    /// Recent batches kept in memory to serve reads without touching the disk.
    pub cache_bytes_max: usize,
    /// Most blocks a segment file reserves ahead of writes at a time (its reservations
    /// start at 64 KiB and double up to this; 0 turns preallocation off).
    pub preallocate_bytes: u64,
    /// Largest batch accepted (Kafka `max.message.bytes`).
    pub batch_bytes_max: usize,
    /// Decompress compressed batches to validate every record (topic config
    /// `validate.compressed.records`); uncompressed batches are always validated.
    pub validate_compressed_records: bool,
    /// Redpanda's `write.caching` (topic config, broker default `--write-caching`): acks=all
    /// is answered once the batch is written to the file (and held by the in-sync
    /// replicas), as Kafka answers it, without waiting for an fdatasync; the flush policy
    /// (`flush.ms`, `flush.messages`) alone decides when it becomes durable. Off: acks=all
    /// also waits for the fdatasync. Either way the answer survives `kill -9` of the broker;
    /// only a power loss or a host crash can take what was not synced yet.
    pub write_caching: bool,
    /// Kafka `min.insync.replicas` (topic config, broker default `--min-insync-replicas`):
    /// acks=all is refused while fewer replicas are in sync. Read by the partition's
    /// leader when it answers a producer; the log itself does not use it.
    pub min_insync_replicas: usize,
    /// Kafka `cleanup.policy`: retention deletes old segments only under `delete`; the
    /// cleaner compacts only under `compact`.
    pub cleanup_policy: CleanupPolicy,
    /// Kafka `delete.retention.ms`: a tombstone stays this long after its segment's newest
    /// record, so a consumer reading the topic from the start sees the delete.
    pub delete_retention_ms: i64,
    /// Kafka `min.cleanable.dirty.ratio`: the cleaner runs once this share of the sealed
    /// bytes was written since it last cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// Memory one cleaning pass's key map may take (Kafka `log.cleaner.dedupe.buffer.size`,
    /// here per pass, and a pass runs one log at a time on each core).
    pub cleaner_dedupe_bytes: usize,
    /// Kafka `message.timestamp.type=LogAppendTime`: the leader stamps each appended batch
    /// with its append time (retention and time lookups then go by arrival).
    pub log_append_time: bool,
    /// Kafka `message.timestamp.before.max.ms`: under CreateTime, a record older than this
    /// (against the broker's clock) is refused with INVALID_TIMESTAMP.
    pub message_timestamp_before_max_ms: i64,
    /// Kafka `message.timestamp.after.max.ms`: under CreateTime, a record this far in the
    /// future is refused.
    pub message_timestamp_after_max_ms: i64,
    /// Kafka `compression.type`: `None` keeps each batch as the producer compressed it
    /// (`producer`); `Some(codec)` stores every produced batch with that codec (attribute
    /// bits; 0 is `uncompressed`), recompressing on append where it differs.
    pub compression_codec: Option<u16>,
    /// Kafka `flush.messages` above 1: an fdatasync as soon as this many records are
    /// written and not yet synced, whatever `flush` says (1 is `FlushPolicy::Always`).
    pub flush_messages: Option<u64>,
}

/// The broker's default flush interval (`--flush-interval-ms`).
pub const FLUSH_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);
/// The broker's default bytes between syncs (`--flush-interval-bytes`).
pub const FLUSH_INTERVAL_BYTES_DEFAULT: u64 = 64 << 20;

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig::DEFAULT
    }
}

impl LogConfig {
    /// Every default in one place: Kafka's where Kafka has the setting. The flags of
    /// `spindle serve` take theirs from here.
    pub const DEFAULT: LogConfig = LogConfig {
        segment_bytes: 1 << 30,
        segment_ms: 7 * 24 * 3600 * 1000,
        retention_bytes: -1,
        retention_ms: 7 * 24 * 3600 * 1000,
        index_interval_bytes: 4096,
        flush: FlushPolicy::Interval {
            interval: FLUSH_INTERVAL_DEFAULT,
            bytes: FLUSH_INTERVAL_BYTES_DEFAULT,
        },
        write_buffer_bytes: 4 << 20,
        writes_in_flight_max: 3,
        dirty_bytes_max: 24 << 20,
        cache_bytes_max: 32 << 20,
        preallocate_bytes: 64 << 20,
        batch_bytes_max: 1_048_588,
        validate_compressed_records: true,
        write_caching: false,
        min_insync_replicas: 1,
        cleanup_policy: CleanupPolicy::DELETE,
        delete_retention_ms: 24 * 3600 * 1000,
        min_cleanable_dirty_ratio: 0.5,
        cleaner_dedupe_bytes: 32 << 20,
        log_append_time: false,
        // Kafka 4.x: no bound into the past, one hour into the future.
        message_timestamp_before_max_ms: i64::MAX,
        message_timestamp_after_max_ms: 3_600_000,
        compression_codec: None,
        flush_messages: None,
    };

    /// Checks the limits once, at open. Returns a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes < BLOCK_BYTES || self.segment_bytes > i32::MAX as u64 {
            return Err(format!(
                "segment_bytes {} must be in [{BLOCK_BYTES}, {}] (index positions are 32-bit)",
                self.segment_bytes,
                i32::MAX
            ));
        }
        if self.segment_ms <= 0 {
            return Err(format!("segment_ms {} must be positive", self.segment_ms));
        }
        if self.retention_bytes < -1 || self.retention_ms < -1 {
            return Err("retention_bytes and retention_ms must be -1 or non-negative".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        if self.write_buffer_bytes == 0
            || !(self.write_buffer_bytes as u64).is_multiple_of(BLOCK_BYTES)
        {
            return Err(format!(
                "write_buffer_bytes {} must be a positive multiple of {BLOCK_BYTES}",
                self.write_buffer_bytes
            ));
        }
        if self.writes_in_flight_max == 0 {
            return Err("writes_in_flight_max must be positive".into());
        }
        if self.dirty_bytes_max < self.write_buffer_bytes {
            return Err("dirty_bytes_max must be at least write_buffer_bytes".into());
        }
        if !self.preallocate_bytes.is_multiple_of(BLOCK_BYTES) {
            return Err(format!(
                "preallocate_bytes must be a multiple of {BLOCK_BYTES}"
            ));
        }
        // A batch larger than segment_bytes is allowed (Kafka allows it too): it starts a
        // segment of its own. Index positions stay 32-bit as long as it fits in i32.
        if self.batch_bytes_max == 0 || self.batch_bytes_max as u64 > i32::MAX as u64 {
            return Err(format!("batch_bytes_max must be in [1, {}]", i32::MAX));
        }
        if self.delete_retention_ms < 0 {
            return Err("delete_retention_ms must be non-negative".into());
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return Err("min_cleanable_dirty_ratio must be in [0, 1]".into());
        }
        if self.flush_messages == Some(0) {
            return Err("flush_messages must be positive".into());
        }
        if let FlushPolicy::Interval { interval, bytes } = self.flush
            && (interval.is_zero() || bytes == 0)
        {
            return Err("flush interval and bytes must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policies_parse_as_kafka_spells_them() {
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
        assert_eq!(CleanupPolicy::parse("compact,delete"), Some(both));
        assert_eq!(CleanupPolicy::parse("delete, compact"), Some(both));
        assert_eq!(
            CleanupPolicy::parse("compact").map(|p| p.delete),
            Some(false)
        );
        for bad in ["", "compact,compact", "purge", "delete,"] {
            assert_eq!(CleanupPolicy::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_is_valid_and_bad_limits_are_refused() {
        assert_eq!(LogConfig::default().validate(), Ok(()));
        let bad = LogConfig {
            write_buffer_bytes: 1000,
            ..LogConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = LogConfig {
            segment_bytes: 1 << 40,
            ..LogConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = LogConfig {
            dirty_bytes_max: 4096,
            ..LogConfig::default()
        };
        assert!(bad.validate().is_err());
        // A topic may set segment.bytes below max.message.bytes (a large batch then gets a
        // segment of its own): such a log must open.
        let small_segments = LogConfig {
            segment_bytes: 16 << 10,
            ..LogConfig::default()
        };
        assert_eq!(small_segments.validate(), Ok(()));
    }
}
