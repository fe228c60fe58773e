//! Kafka wire-level facts that need no I/O: record-batch framing and validation, and the
//! one mapping from Spindle's internal errors to Kafka error codes.
//!
//! Everything here is pure (bytes in, typed values out) so it can be fuzzed and used from
//! any core.

pub mod api;
pub mod compression;
pub mod error_code;
pub mod fetch_response;
pub mod record_batch;
pub mod record_validation;
pub mod request_bounds;
pub mod request_schema;

pub use error_code::ErrorCode;
pub use record_batch::{BatchError, RecordBatchHeader};
