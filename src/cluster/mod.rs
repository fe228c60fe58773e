//! Cluster metadata: which nodes and topics exist, which broker owns each partition, and
//! how changes reach every core. The controller task (core 0) is each node's only writer;
//! in a cluster it proposes changes to the metadata quorum (`quorum`), which every node
//! applies alike. Every core reads an immutable snapshot.

pub mod broker_config;
pub mod client_quotas;
pub mod control;
pub mod controller;
pub mod metadata;
pub mod quorum;
pub mod topic_config;
