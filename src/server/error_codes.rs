//! The one place where Spindle's internal errors become Kafka error codes: record-batch
//! errors (protocol), storage errors and partition lookups (server). It sits in the server
//! layer because it knows all three; the codes themselves are pure protocol facts
//! (`spindle_protocol::ErrorCode`). Handlers call `.error_code()` per partition, so one bad
//! partition gets its own code while the rest of a request succeeds. Runs on any core.

use spindle_protocol::{BatchError, ErrorCode};

use crate::shard::PartitionLookup;
use crate::storage::StorageError;

/// An internal error's Kafka error code. A trait of this layer (not `From`, which the orphan
/// rule keeps in the crate that defines `ErrorCode`) so the whole mapping stays here.
pub trait ToErrorCode {
    fn error_code(&self) -> ErrorCode;
}

impl ToErrorCode for BatchError {
    fn error_code(&self) -> ErrorCode {
        match self {
            BatchError::BadLength { .. }
            | BatchError::BadMagic(_)
            | BatchError::BadCrc { .. }
            | BatchError::BadCompression(_)
            | BatchError::BadRecord(_) => ErrorCode::CorruptMessage,
            BatchError::BadRecordCount { .. }
            | BatchError::BadOffsetDelta { .. }
            | BatchError::KeylessRecord { .. } => ErrorCode::InvalidRecord,
            BatchError::TimestampOutOfRange { .. } => ErrorCode::InvalidTimestamp,
        }
    }
}

impl ToErrorCode for PartitionLookup {
    fn error_code(&self) -> ErrorCode {
        match self {
            PartitionLookup::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            // The client's metadata is stale: it refreshes and goes to the owning core.
            PartitionLookup::NotOwner => ErrorCode::NotLeaderOrFollower,
            // The owner could not open the log: an offline log directory to Kafka.
            PartitionLookup::Unavailable => ErrorCode::KafkaStorageError,
            PartitionLookup::FencedLeaderEpoch => ErrorCode::FencedLeaderEpoch,
            PartitionLookup::UnknownLeaderEpoch => ErrorCode::UnknownLeaderEpoch,
        }
    }
}

impl ToErrorCode for StorageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            StorageError::InvalidBatch(batch_error) => batch_error.error_code(),
            StorageError::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
            StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            // Bytes that fail their CRC on read-back, a failed device or a log that stopped
            // after one: the broker's storage is at fault, not the client's request. Kafka
            // answers KAFKA_STORAGE_ERROR so clients refresh metadata and retry elsewhere.
            StorageError::CorruptOnDisk { .. }
            | StorageError::Io { .. }
            | StorageError::LogFailed { .. } => ErrorCode::KafkaStorageError,
            StorageError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            StorageError::Closed => ErrorCode::UnknownTopicOrPartition,
            // Only a follower's fetcher appends replicated batches; no client sees this.
            StorageError::NotAtLogEnd { .. } => ErrorCode::UnknownServerError,
            StorageError::NotLeader | StorageError::NotFollower => ErrorCode::NotLeaderOrFollower,
        }
    }
}

/// What the group APIs answer when appending a group's records to its `__consumer_offsets`
/// partition failed with `append` (Kafka's GroupMetadataManager mapping): too few replicas
/// is COORDINATOR_NOT_AVAILABLE and a lost leadership or a failed log NOT_COORDINATOR
/// (both send the client to FindCoordinator again), a batch too large
/// INVALID_COMMIT_OFFSET_SIZE.
pub fn coordinator_error(append: ErrorCode) -> ErrorCode {
    match append {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
            ErrorCode::InvalidCommitOffsetSize
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(error: &impl ToErrorCode) -> i16 {
        error.error_code().code()
    }

    #[test]
    fn batch_errors_map_to_corrupt_message_or_invalid_record() {
        assert_eq!(
            code(&StorageError::InvalidBatch(BatchError::BadCrc {
                stored: 1,
                computed: 2
            })),
            2
        );
        assert_eq!(code(&BatchError::BadMagic(1)), 2);
        assert_eq!(
            code(&BatchError::BadRecordCount {
                records_count: 0,
                last_offset_delta: 0
            }),
            87
        );
        assert_eq!(
            code(&StorageError::BatchTooLarge {
                size_bytes: 10,
                size_bytes_max: 1
            }),
            10
        );
        assert_eq!(
            code(&StorageError::Io {
                op: "write",
                kind: std::io::ErrorKind::Other,
                message: String::new()
            }),
            56
        );
    }
}
