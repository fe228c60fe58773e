//! Cluster metadata: which topics exist, which core owns each partition, and how changes
//! reach every core. The controller task (core 0) is the only writer; every core reads an
//! immutable snapshot.

pub mod control;
pub mod controller;
pub mod metadata;
pub mod topic_config;
