//! Consumer groups (classic protocol) and committed offsets. Each group lives on the core
//! its id hashes to (`coordinator_core`); that core's `GroupCoordinator` runs the group's
//! state machine (`state`) and keeps its committed offsets and metadata in a group log
//! (`records`), replayed at start and compacted.

pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::{GroupCoordinator, coordinator_core};
