//! The one place where Spindle's internal errors become Kafka error codes: record-batch
//! errors (protocol), storage errors and partition lookups (server). It sits in the server
//! layer because it knows all three; the codes themselves are pure protocol facts
//! (`protocol::ErrorCode`). Handlers call `ErrorCode::from` per partition, so one bad
//! partition gets its own code while the rest of a request succeeds. Runs on any core.

use crate::protocol::{BatchError, ErrorCode};
use crate::server::shard::PartitionLookup;
use crate::storage::StorageError;

impl From<&BatchError> for ErrorCode {
    fn from(error: &BatchError) -> ErrorCode {
        match error {
            BatchError::BadLength { .. }
            | BatchError::BadMagic(_)
            | BatchError::BadCrc { .. }
            | BatchError::BadCompression(_)
            | BatchError::BadRecord(_) => ErrorCode::CorruptMessage,
            BatchError::BadRecordCount { .. } | BatchError::BadOffsetDelta { .. } => {
                ErrorCode::InvalidRecord
            }
        }
    }
}

impl From<&PartitionLookup> for ErrorCode {
    fn from(lookup: &PartitionLookup) -> ErrorCode {
        match lookup {
            PartitionLookup::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            // The client's metadata is stale: it refreshes and goes to the owning core.
            PartitionLookup::NotOwner => ErrorCode::NotLeaderOrFollower,
            // The owner could not open the log: an offline log directory to Kafka.
            PartitionLookup::Unavailable => ErrorCode::KafkaStorageError,
        }
    }
}

impl From<&StorageError> for ErrorCode {
    fn from(error: &StorageError) -> ErrorCode {
        match error {
            StorageError::InvalidBatch(batch_error) => ErrorCode::from(batch_error),
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_map_to_corrupt_message_or_invalid_record() {
        assert_eq!(
            ErrorCode::from(&StorageError::InvalidBatch(BatchError::BadCrc {
                stored: 1,
                computed: 2
            }))
            .code(),
            2
        );
        assert_eq!(ErrorCode::from(&BatchError::BadMagic(1)).code(), 2);
        assert_eq!(
            ErrorCode::from(&BatchError::BadRecordCount {
                records_count: 0,
                last_offset_delta: 0
            })
            .code(),
            87
        );
        assert_eq!(
            ErrorCode::from(&StorageError::BatchTooLarge {
                size_bytes: 10,
                size_bytes_max: 1
            })
            .code(),
            10
        );
        assert_eq!(
            ErrorCode::from(&StorageError::Io {
                op: "write",
                kind: std::io::ErrorKind::Other,
                message: String::new()
            })
            .code(),
            56
        );
    }
}
