//! The shape of every request body Spindle serves, as the bounds check in
//! [`super::request_bounds`] needs it: which fields each version carries, in wire order, and
//! which of them hold lengths (strings, bytes, arrays). Facts from Kafka's message schemas
//! (`clients/src/main/resources/common/message/*Request.json`); integers are only counted.
//! Pure data, no I/O; read on whichever core decodes a request.
//!
//! A test (`request_bounds::tests`) checks every table against the codec: random bodies
//! built from a table must decode with `kafka-protocol` and consume every byte, at every
//! version served.

use kafka_protocol::messages::ApiKey;

/// What a field holds on the wire. Whether strings, bytes and arrays use the compact
/// encoding (unsigned varint length + 1) follows from the message's flexible versions.
#[derive(Debug)]
pub enum Kind {
    I8,
    I16,
    I32,
    I64,
    Bool,
    Uuid,
    /// A (nullable) string: i16 length, or compact.
    Str,
    /// (Nullable) bytes: i32 length, or compact.
    Bytes,
    /// A (nullable) array: i32 count, or compact.
    Array(&'static Kind),
    Struct(&'static [Field]),
}

impl Kind {
    /// Bytes of a fixed-size kind.
    pub const fn fixed_bytes(&self) -> Option<usize> {
        match self {
            Kind::I8 | Kind::Bool => Some(1),
            Kind::I16 => Some(2),
            Kind::I32 => Some(4),
            Kind::I64 => Some(8),
            Kind::Uuid => Some(16),
            _ => None,
        }
    }
}

/// One field of a struct: the versions that carry it and, for a tagged field, its tag.
#[derive(Debug)]
pub struct Field {
    pub version_min: i16,
    pub version_max: i16,
    pub tag: Option<u32>,
    pub kind: Kind,
}

impl Field {
    const fn new(version_min: i16, version_max: i16, kind: Kind) -> Field {
        Field {
            version_min,
            version_max,
            tag: None,
            kind,
        }
    }

    const fn tagged(tag: u32, version_min: i16, version_max: i16, kind: Kind) -> Field {
        Field {
            version_min,
            version_max,
            tag: Some(tag),
            kind,
        }
    }

    pub fn in_version(&self, version: i16) -> bool {
        self.version_min <= version && version <= self.version_max
    }
}

/// A request body's shape: its top-level fields and the first flexible version, if any.
#[derive(Debug)]
pub struct RequestSchema {
    pub fields: &'static [Field],
    pub flexible_version_min: Option<i16>,
}

impl RequestSchema {
    pub fn is_flexible(&self, version: i16) -> bool {
        self.flexible_version_min.is_some_and(|min| version >= min)
    }
}

/// The shape of `api_key`'s request body, for every API in `api::DECODABLE_APIS`.
pub fn request_schema(api_key: ApiKey) -> Option<RequestSchema> {
    let (fields, flexible_version_min) = match api_key {
        ApiKey::Produce => (PRODUCE_REQUEST, Some(9)),
        ApiKey::Fetch => (FETCH_REQUEST, Some(12)),
        ApiKey::ListOffsets => (LIST_OFFSETS_REQUEST, Some(6)),
        ApiKey::Metadata => (METADATA_REQUEST, Some(9)),
        ApiKey::ApiVersions => (API_VERSIONS_REQUEST, Some(3)),
        ApiKey::CreateTopics => (CREATE_TOPICS_REQUEST, Some(5)),
        ApiKey::DeleteTopics => (DELETE_TOPICS_REQUEST, Some(4)),
        ApiKey::DeleteRecords => (DELETE_RECORDS_REQUEST, Some(2)),
        ApiKey::DescribeConfigs => (DESCRIBE_CONFIGS_REQUEST, Some(4)),
        ApiKey::AlterConfigs => (ALTER_CONFIGS_REQUEST, Some(2)),
        ApiKey::IncrementalAlterConfigs => (INCREMENTAL_ALTER_CONFIGS_REQUEST, Some(1)),
        ApiKey::CreatePartitions => (CREATE_PARTITIONS_REQUEST, Some(2)),
        ApiKey::DescribeCluster => (DESCRIBE_CLUSTER_REQUEST, Some(0)),
        ApiKey::FindCoordinator => (FIND_COORDINATOR_REQUEST, Some(3)),
        ApiKey::JoinGroup => (JOIN_GROUP_REQUEST, Some(6)),
        ApiKey::SyncGroup => (SYNC_GROUP_REQUEST, Some(4)),
        ApiKey::Heartbeat => (HEARTBEAT_REQUEST, Some(4)),
        ApiKey::LeaveGroup => (LEAVE_GROUP_REQUEST, Some(4)),
        ApiKey::OffsetCommit => (OFFSET_COMMIT_REQUEST, Some(8)),
        ApiKey::OffsetFetch => (OFFSET_FETCH_REQUEST, Some(6)),
        ApiKey::ListGroups => (LIST_GROUPS_REQUEST, Some(3)),
        ApiKey::DescribeGroups => (DESCRIBE_GROUPS_REQUEST, Some(5)),
        ApiKey::DeleteGroups => (DELETE_GROUPS_REQUEST, Some(2)),
        ApiKey::OffsetDelete => (OFFSET_DELETE_REQUEST, None),
        ApiKey::InitProducerId => (INIT_PRODUCER_ID_REQUEST, Some(2)),
        ApiKey::OffsetForLeaderEpoch => (OFFSET_FOR_LEADER_EPOCH_REQUEST, Some(4)),
        ApiKey::ElectLeaders => (ELECT_LEADERS_REQUEST, Some(2)),
        ApiKey::DescribeLogDirs => (DESCRIBE_LOG_DIRS_REQUEST, Some(2)),
        ApiKey::DescribeClientQuotas => (DESCRIBE_CLIENT_QUOTAS_REQUEST, Some(1)),
        ApiKey::AlterClientQuotas => (ALTER_CLIENT_QUOTAS_REQUEST, Some(1)),
        ApiKey::AlterPartitionReassignments => (ALTER_PARTITION_REASSIGNMENTS_REQUEST, Some(0)),
        ApiKey::ListPartitionReassignments => (LIST_PARTITION_REASSIGNMENTS_REQUEST, Some(0)),
        _ => return None,
    };
    Some(RequestSchema {
        fields,
        flexible_version_min,
    })
}

// PartitionProduceData, versions 3-13.
const PARTITION_PRODUCE_DATA: &[Field] = &[
    Field::new(3, 13, Kind::I32),   // index
    Field::new(3, 13, Kind::Bytes), // records
];

// TopicProduceData, versions 3-13.
const TOPIC_PRODUCE_DATA: &[Field] = &[
    Field::new(3, 12, Kind::Str),   // name
    Field::new(13, 13, Kind::Uuid), // topic_id
    Field::new(3, 13, Kind::Array(&Kind::Struct(PARTITION_PRODUCE_DATA))), // partition_data
];

// ProduceRequest, versions 3-13.
const PRODUCE_REQUEST: &[Field] = &[
    Field::new(3, 13, Kind::Str), // transactional_id
    Field::new(3, 13, Kind::I16), // acks
    Field::new(3, 13, Kind::I32), // timeout_ms
    Field::new(3, 13, Kind::Array(&Kind::Struct(TOPIC_PRODUCE_DATA))), // topic_data
];

// FetchPartition, versions 4-18.
const FETCH_PARTITION: &[Field] = &[
    Field::new(4, 18, Kind::I32),         // partition
    Field::new(9, 18, Kind::I32),         // current_leader_epoch
    Field::new(4, 18, Kind::I64),         // fetch_offset
    Field::new(12, 18, Kind::I32),        // last_fetched_epoch
    Field::new(5, 18, Kind::I64),         // log_start_offset
    Field::new(4, 18, Kind::I32),         // partition_max_bytes
    Field::tagged(0, 17, 18, Kind::Uuid), // replica_directory_id
    Field::tagged(1, 18, 18, Kind::I64),  // high_watermark
];

// FetchTopic, versions 4-18.
const FETCH_TOPIC: &[Field] = &[
    Field::new(4, 12, Kind::Str),                                   // topic
    Field::new(13, 18, Kind::Uuid),                                 // topic_id
    Field::new(4, 18, Kind::Array(&Kind::Struct(FETCH_PARTITION))), // partitions
];

// ForgottenTopic, versions 4-18.
const FORGOTTEN_TOPIC: &[Field] = &[
    Field::new(7, 12, Kind::Str),               // topic
    Field::new(13, 18, Kind::Uuid),             // topic_id
    Field::new(7, 18, Kind::Array(&Kind::I32)), // partitions
];

// ReplicaState, versions 4-18.
const REPLICA_STATE: &[Field] = &[
    Field::new(15, 18, Kind::I32), // replica_id
    Field::new(15, 18, Kind::I64), // replica_epoch
];

// FetchRequest, versions 4-18.
const FETCH_REQUEST: &[Field] = &[
    Field::new(4, 14, Kind::I32),                               // replica_id
    Field::new(4, 18, Kind::I32),                               // max_wait_ms
    Field::new(4, 18, Kind::I32),                               // min_bytes
    Field::new(4, 18, Kind::I32),                               // max_bytes
    Field::new(4, 18, Kind::I8),                                // isolation_level
    Field::new(7, 18, Kind::I32),                               // session_id
    Field::new(7, 18, Kind::I32),                               // session_epoch
    Field::new(4, 18, Kind::Array(&Kind::Struct(FETCH_TOPIC))), // topics
    Field::new(7, 18, Kind::Array(&Kind::Struct(FORGOTTEN_TOPIC))), // forgotten_topics_data
    Field::new(11, 18, Kind::Str),                              // rack_id
    Field::tagged(0, 12, 18, Kind::Str),                        // cluster_id
    Field::tagged(1, 15, 18, Kind::Struct(REPLICA_STATE)),      // replica_state
];

// ApiVersionsRequest, versions 0-4.
const API_VERSIONS_REQUEST: &[Field] = &[
    Field::new(3, 4, Kind::Str), // client_software_name
    Field::new(3, 4, Kind::Str), // client_software_version
];

// MetadataRequestTopic, versions 0-13.
const METADATA_REQUEST_TOPIC: &[Field] = &[
    Field::new(10, 13, Kind::Uuid), // topic_id
    Field::new(0, 13, Kind::Str),   // name
];

// MetadataRequest, versions 0-13.
const METADATA_REQUEST: &[Field] = &[
    Field::new(0, 13, Kind::Array(&Kind::Struct(METADATA_REQUEST_TOPIC))), // topics
    Field::new(4, 13, Kind::Bool), // allow_auto_topic_creation
    Field::new(8, 10, Kind::Bool), // include_cluster_authorized_operations
    Field::new(8, 13, Kind::Bool), // include_topic_authorized_operations
];

// ListOffsetsPartition, versions 1-10.
const LIST_OFFSETS_PARTITION: &[Field] = &[
    Field::new(1, 10, Kind::I32), // partition_index
    Field::new(4, 10, Kind::I32), // current_leader_epoch
    Field::new(1, 10, Kind::I64), // timestamp
];

// ListOffsetsTopic, versions 1-10.
const LIST_OFFSETS_TOPIC: &[Field] = &[
    Field::new(1, 10, Kind::Str), // name
    Field::new(1, 10, Kind::Array(&Kind::Struct(LIST_OFFSETS_PARTITION))), // partitions
];

// ListOffsetsRequest, versions 1-10.
const LIST_OFFSETS_REQUEST: &[Field] = &[
    Field::new(1, 10, Kind::I32), // replica_id
    Field::new(2, 10, Kind::I8),  // isolation_level
    Field::new(1, 10, Kind::Array(&Kind::Struct(LIST_OFFSETS_TOPIC))), // topics
    Field::new(10, 10, Kind::I32), // timeout_ms
];

// CreatableReplicaAssignment, versions 2-7.
const CREATABLE_REPLICA_ASSIGNMENT: &[Field] = &[
    Field::new(2, 7, Kind::I32),               // partition_index
    Field::new(2, 7, Kind::Array(&Kind::I32)), // broker_ids
];

// CreatableTopicConfig, versions 2-7.
const CREATABLE_TOPIC_CONFIG: &[Field] = &[
    Field::new(2, 7, Kind::Str), // name
    Field::new(2, 7, Kind::Str), // value
];

// CreatableTopic, versions 2-7.
const CREATABLE_TOPIC: &[Field] = &[
    Field::new(2, 7, Kind::Str), // name
    Field::new(2, 7, Kind::I32), // num_partitions
    Field::new(2, 7, Kind::I16), // replication_factor
    Field::new(
        2,
        7,
        Kind::Array(&Kind::Struct(CREATABLE_REPLICA_ASSIGNMENT)),
    ), // assignments
    Field::new(2, 7, Kind::Array(&Kind::Struct(CREATABLE_TOPIC_CONFIG))), // configs
];

// CreateTopicsRequest, versions 2-7.
const CREATE_TOPICS_REQUEST: &[Field] = &[
    Field::new(2, 7, Kind::Array(&Kind::Struct(CREATABLE_TOPIC))), // topics
    Field::new(2, 7, Kind::I32),                                   // timeout_ms
    Field::new(2, 7, Kind::Bool),                                  // validate_only
];

// DeleteTopicState, versions 1-6.
const DELETE_TOPIC_STATE: &[Field] = &[
    Field::new(6, 6, Kind::Str),  // name
    Field::new(6, 6, Kind::Uuid), // topic_id
];

// DeleteTopicsRequest, versions 1-6.
const DELETE_TOPICS_REQUEST: &[Field] = &[
    Field::new(6, 6, Kind::Array(&Kind::Struct(DELETE_TOPIC_STATE))), // topics
    Field::new(1, 5, Kind::Array(&Kind::Str)),                        // topic_names
    Field::new(1, 6, Kind::I32),                                      // timeout_ms
];

// DeleteRecordsPartition, versions 0-2.
const DELETE_RECORDS_PARTITION: &[Field] = &[
    Field::new(0, 2, Kind::I32), // partition_index
    Field::new(0, 2, Kind::I64), // offset
];

// DeleteRecordsTopic, versions 0-2.
const DELETE_RECORDS_TOPIC: &[Field] = &[
    Field::new(0, 2, Kind::Str), // name
    Field::new(0, 2, Kind::Array(&Kind::Struct(DELETE_RECORDS_PARTITION))), // partitions
];

// DeleteRecordsRequest, versions 0-2.
const DELETE_RECORDS_REQUEST: &[Field] = &[
    Field::new(0, 2, Kind::Array(&Kind::Struct(DELETE_RECORDS_TOPIC))), // topics
    Field::new(0, 2, Kind::I32),                                        // timeout_ms
];

// DescribableLogDirTopic, versions 1-4.
const DESCRIBABLE_LOG_DIR_TOPIC: &[Field] = &[
    Field::new(1, 4, Kind::Str),               // topic
    Field::new(1, 4, Kind::Array(&Kind::I32)), // partitions
];

// DescribeLogDirsRequest, versions 1-4.
const DESCRIBE_LOG_DIRS_REQUEST: &[Field] = &[
    Field::new(1, 4, Kind::Array(&Kind::Struct(DESCRIBABLE_LOG_DIR_TOPIC))), // topics
];

// ComponentData (DescribeClientQuotas), versions 0-1.
const CLIENT_QUOTA_COMPONENT: &[Field] = &[
    Field::new(0, 1, Kind::Str), // entity_type
    Field::new(0, 1, Kind::I8),  // match_type
    Field::new(0, 1, Kind::Str), // match (nullable)
];

// DescribeClientQuotasRequest, versions 0-1.
const DESCRIBE_CLIENT_QUOTAS_REQUEST: &[Field] = &[
    Field::new(0, 1, Kind::Array(&Kind::Struct(CLIENT_QUOTA_COMPONENT))), // components
    Field::new(0, 1, Kind::Bool),                                         // strict
];

// EntityData (AlterClientQuotas), versions 0-1.
const CLIENT_QUOTA_ENTITY: &[Field] = &[
    Field::new(0, 1, Kind::Str), // entity_type
    Field::new(0, 1, Kind::Str), // entity_name (nullable)
];

// OpData (AlterClientQuotas), versions 0-1.
const CLIENT_QUOTA_OP: &[Field] = &[
    Field::new(0, 1, Kind::Str), // key
    // value: a float64, eight bytes like an int64 (only its size matters here).
    Field::new(0, 1, Kind::I64),
    Field::new(0, 1, Kind::Bool), // remove
];

// EntryData (AlterClientQuotas), versions 0-1.
const CLIENT_QUOTA_ENTRY: &[Field] = &[
    Field::new(0, 1, Kind::Array(&Kind::Struct(CLIENT_QUOTA_ENTITY))), // entity
    Field::new(0, 1, Kind::Array(&Kind::Struct(CLIENT_QUOTA_OP))),     // ops
];

// AlterClientQuotasRequest, versions 0-1.
const ALTER_CLIENT_QUOTAS_REQUEST: &[Field] = &[
    Field::new(0, 1, Kind::Array(&Kind::Struct(CLIENT_QUOTA_ENTRY))), // entries
    Field::new(0, 1, Kind::Bool),                                     // validate_only
];

// DescribeConfigsResource, versions 1-4.
const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    Field::new(1, 4, Kind::I8),                // resource_type
    Field::new(1, 4, Kind::Str),               // resource_name
    Field::new(1, 4, Kind::Array(&Kind::Str)), // configuration_keys
];

// DescribeConfigsRequest, versions 1-4.
const DESCRIBE_CONFIGS_REQUEST: &[Field] = &[
    Field::new(1, 4, Kind::Array(&Kind::Struct(DESCRIBE_CONFIGS_RESOURCE))), // resources
    Field::new(1, 4, Kind::Bool),                                            // include_synonyms
    Field::new(3, 4, Kind::Bool), // include_documentation
];

// AlterableConfig (AlterConfigs), versions 0-2.
const ALTERABLE_CONFIG: &[Field] = &[
    Field::new(0, 2, Kind::Str), // name
    Field::new(0, 2, Kind::Str), // value
];

// AlterConfigsResource, versions 0-2.
const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    Field::new(0, 2, Kind::I8),  // resource_type
    Field::new(0, 2, Kind::Str), // resource_name
    Field::new(0, 2, Kind::Array(&Kind::Struct(ALTERABLE_CONFIG))), // configs
];

// AlterConfigsRequest, versions 0-2.
const ALTER_CONFIGS_REQUEST: &[Field] = &[
    Field::new(0, 2, Kind::Array(&Kind::Struct(ALTER_CONFIGS_RESOURCE))), // resources
    Field::new(0, 2, Kind::Bool),                                         // validate_only
];

// AlterableConfig (IncrementalAlterConfigs), versions 0-1.
const INCREMENTAL_ALTERABLE_CONFIG: &[Field] = &[
    Field::new(0, 1, Kind::Str), // name
    Field::new(0, 1, Kind::I8),  // config_operation
    Field::new(0, 1, Kind::Str), // value
];

// AlterConfigsResource (IncrementalAlterConfigs), versions 0-1.
const INCREMENTAL_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    Field::new(0, 1, Kind::I8),  // resource_type
    Field::new(0, 1, Kind::Str), // resource_name
    Field::new(
        0,
        1,
        Kind::Array(&Kind::Struct(INCREMENTAL_ALTERABLE_CONFIG)),
    ), // configs
];

// IncrementalAlterConfigsRequest, versions 0-1.
const INCREMENTAL_ALTER_CONFIGS_REQUEST: &[Field] = &[
    Field::new(
        0,
        1,
        Kind::Array(&Kind::Struct(INCREMENTAL_ALTER_CONFIGS_RESOURCE)),
    ), // resources
    Field::new(0, 1, Kind::Bool), // validate_only
];

// CreatePartitionsAssignment, versions 0-3.
const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[
    Field::new(0, 3, Kind::Array(&Kind::I32)), // broker_ids
];

// CreatePartitionsTopic, versions 0-3.
const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    Field::new(0, 3, Kind::Str), // name
    Field::new(0, 3, Kind::I32), // count
    Field::new(
        0,
        3,
        Kind::Array(&Kind::Struct(CREATE_PARTITIONS_ASSIGNMENT)),
    ), // assignments
];

// CreatePartitionsRequest, versions 0-3.
const CREATE_PARTITIONS_REQUEST: &[Field] = &[
    Field::new(0, 3, Kind::Array(&Kind::Struct(CREATE_PARTITIONS_TOPIC))), // topics
    Field::new(0, 3, Kind::I32),                                           // timeout_ms
    Field::new(0, 3, Kind::Bool),                                          // validate_only
];

// DescribeClusterRequest, versions 0-2.
const DESCRIBE_CLUSTER_REQUEST: &[Field] = &[
    Field::new(0, 2, Kind::Bool), // include_cluster_authorized_operations
    Field::new(1, 2, Kind::I8),   // endpoint_type
    Field::new(2, 2, Kind::Bool), // include_fenced_brokers
];

// FindCoordinatorRequest, versions 0-6.
const FIND_COORDINATOR_REQUEST: &[Field] = &[
    Field::new(0, 3, Kind::Str),               // key
    Field::new(1, 6, Kind::I8),                // key_type
    Field::new(4, 6, Kind::Array(&Kind::Str)), // coordinator_keys
];

// JoinGroupRequestProtocol, versions 0-9.
const JOIN_GROUP_REQUEST_PROTOCOL: &[Field] = &[
    Field::new(0, 9, Kind::Str),   // name
    Field::new(0, 9, Kind::Bytes), // metadata
];

// JoinGroupRequest, versions 0-9.
const JOIN_GROUP_REQUEST: &[Field] = &[
    Field::new(0, 9, Kind::Str), // group_id
    Field::new(0, 9, Kind::I32), // session_timeout_ms
    Field::new(1, 9, Kind::I32), // rebalance_timeout_ms
    Field::new(0, 9, Kind::Str), // member_id
    Field::new(5, 9, Kind::Str), // group_instance_id
    Field::new(0, 9, Kind::Str), // protocol_type
    Field::new(
        0,
        9,
        Kind::Array(&Kind::Struct(JOIN_GROUP_REQUEST_PROTOCOL)),
    ), // protocols
    Field::new(8, 9, Kind::Str), // reason
];

// SyncGroupRequestAssignment, versions 0-5.
const SYNC_GROUP_REQUEST_ASSIGNMENT: &[Field] = &[
    Field::new(0, 5, Kind::Str),   // member_id
    Field::new(0, 5, Kind::Bytes), // assignment
];

// SyncGroupRequest, versions 0-5.
const SYNC_GROUP_REQUEST: &[Field] = &[
    Field::new(0, 5, Kind::Str), // group_id
    Field::new(0, 5, Kind::I32), // generation_id
    Field::new(0, 5, Kind::Str), // member_id
    Field::new(3, 5, Kind::Str), // group_instance_id
    Field::new(5, 5, Kind::Str), // protocol_type
    Field::new(5, 5, Kind::Str), // protocol_name
    Field::new(
        0,
        5,
        Kind::Array(&Kind::Struct(SYNC_GROUP_REQUEST_ASSIGNMENT)),
    ), // assignments
];

// HeartbeatRequest, versions 0-4.
const HEARTBEAT_REQUEST: &[Field] = &[
    Field::new(0, 4, Kind::Str), // group_id
    Field::new(0, 4, Kind::I32), // generation_id
    Field::new(0, 4, Kind::Str), // member_id
    Field::new(3, 4, Kind::Str), // group_instance_id
];

// MemberIdentity, versions 0-5.
const MEMBER_IDENTITY: &[Field] = &[
    Field::new(3, 5, Kind::Str), // member_id
    Field::new(3, 5, Kind::Str), // group_instance_id
    Field::new(5, 5, Kind::Str), // reason
];

// LeaveGroupRequest, versions 0-5.
const LEAVE_GROUP_REQUEST: &[Field] = &[
    Field::new(0, 5, Kind::Str),                                   // group_id
    Field::new(0, 2, Kind::Str),                                   // member_id
    Field::new(3, 5, Kind::Array(&Kind::Struct(MEMBER_IDENTITY))), // members
];

// OffsetCommitRequestPartition, versions 2-9.
const OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    Field::new(2, 9, Kind::I32), // partition_index
    Field::new(2, 9, Kind::I64), // committed_offset
    Field::new(6, 9, Kind::I32), // committed_leader_epoch
    Field::new(2, 9, Kind::Str), // committed_metadata
];

// OffsetCommitRequestTopic, versions 2-9.
const OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    Field::new(2, 9, Kind::Str), // name
    Field::new(
        2,
        9,
        Kind::Array(&Kind::Struct(OFFSET_COMMIT_REQUEST_PARTITION)),
    ), // partitions
];

// OffsetCommitRequest, versions 2-9.
const OFFSET_COMMIT_REQUEST: &[Field] = &[
    Field::new(2, 9, Kind::Str), // group_id
    Field::new(2, 9, Kind::I32), // generation_id_or_member_epoch
    Field::new(2, 9, Kind::Str), // member_id
    Field::new(7, 9, Kind::Str), // group_instance_id
    Field::new(2, 4, Kind::I64), // retention_time_ms
    Field::new(
        2,
        9,
        Kind::Array(&Kind::Struct(OFFSET_COMMIT_REQUEST_TOPIC)),
    ), // topics
];

// OffsetFetchRequestTopic, versions 1-9.
const OFFSET_FETCH_REQUEST_TOPIC: &[Field] = &[
    Field::new(1, 7, Kind::Str),               // name
    Field::new(1, 7, Kind::Array(&Kind::I32)), // partition_indexes
];

// OffsetFetchRequestTopics, versions 1-9.
const OFFSET_FETCH_REQUEST_TOPICS: &[Field] = &[
    Field::new(8, 9, Kind::Str),               // name
    Field::new(8, 9, Kind::Array(&Kind::I32)), // partition_indexes
];

// OffsetFetchRequestGroup, versions 1-9.
const OFFSET_FETCH_REQUEST_GROUP: &[Field] = &[
    Field::new(8, 9, Kind::Str), // group_id
    Field::new(9, 9, Kind::Str), // member_id
    Field::new(9, 9, Kind::I32), // member_epoch
    Field::new(
        8,
        9,
        Kind::Array(&Kind::Struct(OFFSET_FETCH_REQUEST_TOPICS)),
    ), // topics
];

// OffsetFetchRequest, versions 1-9.
const OFFSET_FETCH_REQUEST: &[Field] = &[
    Field::new(1, 7, Kind::Str), // group_id
    Field::new(1, 7, Kind::Array(&Kind::Struct(OFFSET_FETCH_REQUEST_TOPIC))), // topics
    Field::new(8, 9, Kind::Array(&Kind::Struct(OFFSET_FETCH_REQUEST_GROUP))), // groups
    Field::new(7, 9, Kind::Bool), // require_stable
];

// ListGroupsRequest, versions 0-5.
const LIST_GROUPS_REQUEST: &[Field] = &[
    Field::new(4, 5, Kind::Array(&Kind::Str)), // states_filter
    Field::new(5, 5, Kind::Array(&Kind::Str)), // types_filter
];

// DescribeGroupsRequest, versions 0-6.
const DESCRIBE_GROUPS_REQUEST: &[Field] = &[
    Field::new(0, 6, Kind::Array(&Kind::Str)), // groups
    Field::new(3, 6, Kind::Bool),              // include_authorized_operations
];

// DeleteGroupsRequest, versions 0-2.
const DELETE_GROUPS_REQUEST: &[Field] = &[
    Field::new(0, 2, Kind::Array(&Kind::Str)), // groups_names
];

// OffsetDeleteRequestPartition, versions 0-0.
const OFFSET_DELETE_REQUEST_PARTITION: &[Field] = &[
    Field::new(0, 0, Kind::I32), // partition_index
];

// OffsetDeleteRequestTopic, versions 0-0.
const OFFSET_DELETE_REQUEST_TOPIC: &[Field] = &[
    Field::new(0, 0, Kind::Str), // name
    Field::new(
        0,
        0,
        Kind::Array(&Kind::Struct(OFFSET_DELETE_REQUEST_PARTITION)),
    ), // partitions
];

// OffsetDeleteRequest, versions 0-0.
const OFFSET_DELETE_REQUEST: &[Field] = &[
    Field::new(0, 0, Kind::Str), // group_id
    Field::new(
        0,
        0,
        Kind::Array(&Kind::Struct(OFFSET_DELETE_REQUEST_TOPIC)),
    ), // topics
];

// OffsetForLeaderPartition, versions 2-4 (0 and 1 are gone from Kafka 4.0).
const OFFSET_FOR_LEADER_PARTITION: &[Field] = &[
    Field::new(2, 4, Kind::I32), // partition
    Field::new(2, 4, Kind::I32), // current_leader_epoch
    Field::new(2, 4, Kind::I32), // leader_epoch
];

// OffsetForLeaderTopic, versions 2-4.
const OFFSET_FOR_LEADER_TOPIC: &[Field] = &[
    Field::new(2, 4, Kind::Str), // topic
    Field::new(
        2,
        4,
        Kind::Array(&Kind::Struct(OFFSET_FOR_LEADER_PARTITION)),
    ), // partitions
];

// OffsetForLeaderEpochRequest, versions 2-4.
const OFFSET_FOR_LEADER_EPOCH_REQUEST: &[Field] = &[
    Field::new(3, 4, Kind::I32), // replica_id
    Field::new(2, 4, Kind::Array(&Kind::Struct(OFFSET_FOR_LEADER_TOPIC))), // topics
];

// TopicPartitions of ElectLeadersRequest, versions 0-2.
const ELECT_LEADERS_TOPIC_PARTITIONS: &[Field] = &[
    Field::new(0, 2, Kind::Str),               // topic
    Field::new(0, 2, Kind::Array(&Kind::I32)), // partitions
];

// ElectLeadersRequest, versions 0-2.
const ELECT_LEADERS_REQUEST: &[Field] = &[
    Field::new(1, 2, Kind::I8), // election_type
    Field::new(
        0,
        2,
        Kind::Array(&Kind::Struct(ELECT_LEADERS_TOPIC_PARTITIONS)),
    ), // topic_partitions (null: every partition)
    Field::new(0, 2, Kind::I32), // timeout_ms
];

// ReassignablePartition, versions 0-1.
const REASSIGNABLE_PARTITION: &[Field] = &[
    Field::new(0, 1, Kind::I32),               // partition_index
    Field::new(0, 1, Kind::Array(&Kind::I32)), // replicas (null: cancel)
];

// ReassignableTopic, versions 0-1.
const REASSIGNABLE_TOPIC: &[Field] = &[
    Field::new(0, 1, Kind::Str), // name
    Field::new(0, 1, Kind::Array(&Kind::Struct(REASSIGNABLE_PARTITION))), // partitions
];

// AlterPartitionReassignmentsRequest, versions 0-1.
const ALTER_PARTITION_REASSIGNMENTS_REQUEST: &[Field] = &[
    Field::new(0, 1, Kind::I32),  // timeout_ms
    Field::new(1, 1, Kind::Bool), // allow_replication_factor_change
    Field::new(0, 1, Kind::Array(&Kind::Struct(REASSIGNABLE_TOPIC))), // topics
];

// ListPartitionReassignmentsTopics, version 0.
const LIST_PARTITION_REASSIGNMENTS_TOPIC: &[Field] = &[
    Field::new(0, 0, Kind::Str),               // name
    Field::new(0, 0, Kind::Array(&Kind::I32)), // partition_indexes
];

// ListPartitionReassignmentsRequest, version 0.
const LIST_PARTITION_REASSIGNMENTS_REQUEST: &[Field] = &[
    Field::new(0, 0, Kind::I32), // timeout_ms
    Field::new(
        0,
        0,
        Kind::Array(&Kind::Struct(LIST_PARTITION_REASSIGNMENTS_TOPIC)),
    ), // topics (null: every topic)
];

// InitProducerIdRequest, versions 0-5.
const INIT_PRODUCER_ID_REQUEST: &[Field] = &[
    Field::new(0, 5, Kind::Str), // transactional_id
    Field::new(0, 5, Kind::I32), // transaction_timeout_ms
    Field::new(3, 5, Kind::I64), // producer_id
    Field::new(3, 5, Kind::I16), // producer_epoch
];
