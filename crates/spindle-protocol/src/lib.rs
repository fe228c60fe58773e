//! Kafka wire-level facts that need no I/O: request framing and its bounds check, the API
//! versions served, RecordBatch v2 (framing, validation, building), the compression codecs
//! and Kafka's error codes. The mapping from the broker's internal errors to those codes
//! lives in the broker (`spindle::server::error_codes`), which knows both sides.
//!
//! Everything here is pure (bytes in, typed values out: no executor, no async, no I/O) so it
//! can be fuzzed (`fuzz/`) and used from any core or any client.

#![forbid(unsafe_code)]

pub mod api;
pub mod compaction;
pub mod compression;
pub mod error_code;
pub mod fetch_response;
pub mod partitioner;
pub mod record_batch;
pub mod record_validation;
pub mod request_bounds;
pub mod request_schema;

pub use error_code::ErrorCode;
pub use record_batch::{BatchError, RecordBatchHeader};
