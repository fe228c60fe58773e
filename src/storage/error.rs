//! Typed operating errors of the storage engine. Kafka codes come from
//! `protocol::error_code`, the only mapping.

use spindle_protocol::BatchError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The batch a producer sent is malformed; nothing was appended.
    InvalidBatch(BatchError),
    /// The batch is larger than the log accepts.
    BatchTooLarge {
        size_bytes: usize,
        size_bytes_max: usize,
    },
    /// A read asked for an offset outside `[log_start_offset, high_watermark]`.
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },
    /// Bytes read back from a segment failed validation (CRC, framing or offsets).
    CorruptOnDisk {
        segment_base_offset: i64,
        position: u64,
        reason: String,
    },
    /// The device answered an operation with an error.
    Io {
        op: &'static str,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// An earlier I/O error stopped this log; it must be reopened (recovery) to continue.
    LogFailed { reason: String },
    /// The log's settings are inconsistent; it was not opened.
    InvalidConfig(String),
    /// The log was closed or deleted.
    Closed,
    /// A batch copied from the leader does not start at this log's end (a follower missed
    /// or repeated data); nothing was appended.
    NotAtLogEnd {
        base_offset: i64,
        log_end_offset: i64,
    },
    /// This replica no longer leads: a producer's batch was refused.
    NotLeader,
    /// This replica leads: a batch copied from another replica was refused.
    NotFollower,
}

impl StorageError {
    pub(crate) fn io(op: &'static str, error: std::io::Error) -> StorageError {
        StorageError::Io {
            op,
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::InvalidBatch(error) => write!(f, "invalid record batch: {error}"),
            StorageError::BatchTooLarge {
                size_bytes,
                size_bytes_max,
            } => {
                write!(
                    f,
                    "batch of {size_bytes} bytes exceeds the limit of {size_bytes_max}"
                )
            }
            StorageError::NotLeader => write!(f, "this replica does not lead the partition"),
            StorageError::NotFollower => {
                write!(f, "this replica leads the partition: it copies no one")
            }
            StorageError::NotAtLogEnd {
                base_offset,
                log_end_offset,
            } => write!(
                f,
                "a replicated batch at offset {base_offset} does not start at the log end {log_end_offset}"
            ),
            StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                high_watermark,
            } => write!(
                f,
                "offset {offset} outside [{log_start_offset}, {high_watermark}]"
            ),
            StorageError::CorruptOnDisk {
                segment_base_offset,
                position,
                reason,
            } => write!(
                f,
                "corrupt data in segment {segment_base_offset} at position {position}: {reason}"
            ),
            StorageError::Io { op, message, .. } => write!(f, "{op} failed: {message}"),
            StorageError::LogFailed { reason } => {
                write!(f, "log stopped after an I/O error: {reason}")
            }
            StorageError::InvalidConfig(reason) => write!(f, "invalid log config: {reason}"),
            StorageError::Closed => write!(f, "log closed"),
        }
    }
}

impl std::error::Error for StorageError {}

impl From<BatchError> for StorageError {
    fn from(error: BatchError) -> StorageError {
        StorageError::InvalidBatch(error)
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;
