//! Kafka error codes and the one place where Spindle's internal errors become them.
//!
//! Numbers are Kafka's (see `org.apache.kafka.common.protocol.Errors`); they are never
//! reused. Handlers call [`ErrorCode::from`] per partition, so one bad partition gets its
//! own code while the rest of a request succeeds.

use crate::protocol::BatchError;
use crate::server::shard::PartitionLookup;
use crate::storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    UnknownServerError = -1,
    None = 0,
    OffsetOutOfRange = 1,
    CorruptMessage = 2,
    UnknownTopicOrPartition = 3,
    LeaderNotAvailable = 5,
    NotLeaderOrFollower = 6,
    RequestTimedOut = 7,
    MessageTooLarge = 10,
    OffsetMetadataTooLarge = 12,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    InvalidTopicException = 17,
    NotEnoughReplicas = 19,
    InvalidRequiredAcks = 21,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    UnsupportedVersion = 35,
    OutOfOrderSequenceNumber = 45,
    InvalidProducerEpoch = 47,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39,
    InvalidConfig = 40,
    InvalidRequest = 42,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    TransactionalIdAuthorizationFailed = 53,
    InvalidRecord = 87,
    NonEmptyGroup = 68,
    GroupIdNotFound = 69,
    FetchSessionIdNotFound = 70,
    MemberIdRequired = 79,
    FencedInstanceId = 82,
    GroupSubscribedToTopic = 86,
    UnknownTopicId = 100,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }
}

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
