//! Kafka error codes. Numbers are Kafka's (see `org.apache.kafka.common.protocol.Errors`);
//! they are never reused. Pure: which internal error becomes which code is decided in one
//! place above the layers those errors come from (`server::error_codes`).

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
    BrokerNotAvailable = 8,
    MessageTooLarge = 10,
    OffsetMetadataTooLarge = 12,
    CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15,
    NotCoordinator = 16,
    InvalidTopicException = 17,
    RecordListTooLarge = 18,
    NotEnoughReplicas = 19,
    NotEnoughReplicasAfterAppend = 20,
    InvalidRequiredAcks = 21,
    IllegalGeneration = 22,
    InconsistentGroupProtocol = 23,
    InvalidGroupId = 24,
    UnknownMemberId = 25,
    InvalidSessionTimeout = 26,
    RebalanceInProgress = 27,
    InvalidCommitOffsetSize = 28,
    InvalidTimestamp = 32,
    UnsupportedVersion = 35,
    OutOfOrderSequenceNumber = 45,
    InvalidProducerEpoch = 47,
    TopicAlreadyExists = 36,
    InvalidPartitions = 37,
    InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39,
    InvalidConfig = 40,
    NotController = 41,
    InvalidRequest = 42,
    KafkaStorageError = 56,
    UnknownProducerId = 59,
    TransactionalIdAuthorizationFailed = 53,
    InvalidRecord = 87,
    NonEmptyGroup = 68,
    PreferredLeaderNotAvailable = 80,
    ElectionNotNeeded = 84,
    EligibleLeadersNotAvailable = 83,
    NoReassignmentInProgress = 85,
    GroupIdNotFound = 69,
    FetchSessionIdNotFound = 70,
    FencedLeaderEpoch = 74,
    UnknownLeaderEpoch = 75,
    MemberIdRequired = 79,
    FencedInstanceId = 82,
    GroupSubscribedToTopic = 86,
    UnknownTopicId = 100,
    IneligibleReplica = 107,
}

impl ErrorCode {
    pub fn code(self) -> i16 {
        self as i16
    }
}
