//! Idempotent producers: producer ids (InitProducerId) and the per-partition sequence state
//! that turns a retried batch into its original offset instead of a duplicate.

pub mod ids;
pub mod state;

pub use ids::ProducerIdAllocator;
pub use state::{ProducerStateTable, SequenceCheck};
