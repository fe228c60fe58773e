//! The broker at the wire level, with requests real clients rarely send: every served
//! version of every API answers with a response that decodes at that version; bad frames
//! close only their own connection; a bad partition gets its own error while the rest of
//! the request succeeds; the wrong core answers NOT_LEADER_OR_FOLLOWER; a long-poll fetch is
//! woken by an append.

use std::time::{Duration, Instant};

use crate::common::{Broker, RawClient, fetch_request, raw_request_frame, temp_dir};
use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use spindle::server::handlers::SERVED_APIS;
use spindle_protocol::record_batch::build_batch;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn create_topic(client: &mut RawClient, topic: &str, partitions: i32) {
    let response: CreateTopicsResponse = client.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 0, "{:?}", response.topics[0]);
}

fn metadata(client: &mut RawClient, topic: &str) -> MetadataResponse {
    client.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(topic))),
            ]))
            .with_allow_auto_topic_creation(false),
    )
}

/// The core owning `partition` of `topic`, from Metadata.
fn leader(client: &mut RawClient, topic: &str, partition: i32) -> usize {
    let response = metadata(client, topic);
    response.topics[0].partitions[partition as usize]
        .leader_id
        .0 as usize
}

fn produce_request(topic: &str, partitions: Vec<(i32, Bytes)>, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(
                    partitions
                        .into_iter()
                        .map(|(index, records)| {
                            PartitionProduceData::default()
                                .with_index(index)
                                .with_records(Some(records))
                        })
                        .collect(),
                ),
        ])
}

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<(Option<&[u8]>, &[u8])> =
        values.iter().map(|v| (None, v.as_bytes())).collect();
    Bytes::from(build_batch(1_700_000_000_000, &records))
}

/// A connection to the core coordinating `group`, found through FindCoordinator.
fn coordinator_client(broker: &Broker, group: &str) -> RawClient {
    let mut bootstrap = RawClient::connect(&broker.bootstrap);
    let response: FindCoordinatorResponse = bootstrap.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
    );
    assert_eq!(response.error_code, 0);
    RawClient::connect(&format!("127.0.0.1:{}", response.port))
}

fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(StrBytes::from_string(member_id.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ])
}

/// Joins `group` as its only member (JoinGroup v5): `(member id, generation)`.
fn join(client: &mut RawClient, group: &str) -> (StrBytes, i32) {
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 5, &join_request(group, ""));
    assert_eq!(first.error_code, 79);
    let joined: JoinGroupResponse = client.call(
        ApiKey::JoinGroup,
        5,
        &join_request(group, first.member_id.as_str()),
    );
    assert_eq!(joined.error_code, 0);
    (joined.member_id, joined.generation_id)
}

fn sync(client: &mut RawClient, group: &str, member: &StrBytes, generation: i32) {
    let response: SyncGroupResponse = client.call(
        ApiKey::SyncGroup,
        3,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_member_id(member.clone())
            .with_generation_id(generation)
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(member.clone())
                    .with_assignment(Bytes::from_static(b"A")),
            ]),
    );
    assert_eq!(response.error_code, 0);
}

fn commit_request(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(partition)
                        .with_committed_offset(offset),
                ]),
        ])
}

/// The committed offset of one partition, through OffsetFetch at `version`.
fn fetch_committed(
    client: &mut RawClient,
    version: i16,
    group: &str,
    topic: &str,
    partition: i32,
) -> i64 {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    if version >= 8 {
        let response: OffsetFetchResponse = client.call(
            ApiKey::OffsetFetch,
            version,
            &OffsetFetchRequest::default().with_groups(vec![
                OffsetFetchRequestGroup::default()
                    .with_group_id(group_id)
                    .with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(name(topic))
                            .with_partition_indexes(vec![partition]),
                    ])),
            ]),
        );
        let group = &response.groups[0];
        assert_eq!(group.error_code, 0);
        group.topics[0].partitions[0].committed_offset
    } else {
        let response: OffsetFetchResponse = client.call(
            ApiKey::OffsetFetch,
            version,
            &OffsetFetchRequest::default()
                .with_group_id(group_id)
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(name(topic))
                        .with_partition_indexes(vec![partition]),
                ])),
        );
        assert_eq!(response.error_code, 0);
        response.topics[0].partitions[0].committed_offset
    }
}

#[test]
fn every_served_version_of_every_api_answers() {
    let dir = temp_dir("versions");
    let broker = Broker::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "versions", 2);
    let topic_id = metadata(&mut admin, "versions").topics[0].topic_id;
    let owner = leader(&mut admin, "versions", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let mut served = 0;
    for &(api_key, min, max) in SERVED_APIS {
        for version in min..=max {
            let context = format!("{api_key:?} v{version}");
            match api_key {
                ApiKey::ApiVersions => {
                    let response: ApiVersionsResponse = client.call(
                        api_key,
                        version,
                        &ApiVersionsRequest::default()
                            .with_client_software_name(StrBytes::from_static_str("t"))
                            .with_client_software_version(StrBytes::from_static_str("1")),
                    );
                    assert_eq!(response.error_code, 0, "{context}");
                    assert_eq!(response.api_keys.len(), SERVED_APIS.len(), "{context}");
                }
                ApiKey::Metadata => {
                    let topics = Some(vec![
                        MetadataRequestTopic::default().with_name(Some(name("versions"))),
                    ]);
                    let response: MetadataResponse = client.call(
                        api_key,
                        version,
                        &MetadataRequest::default().with_topics(topics),
                    );
                    assert_eq!(response.brokers.len(), 2, "{context}");
                    assert_eq!(response.topics[0].error_code, 0, "{context}");
                    assert_eq!(response.topics[0].partitions.len(), 2, "{context}");
                    if version >= 10 {
                        assert_eq!(response.topics[0].topic_id, topic_id, "{context}");
                    }
                }
                ApiKey::Produce => {
                    let mut request =
                        produce_request("versions", vec![(0, batch(&[&context]))], -1);
                    if version >= 13 {
                        // v13 names the topic by id.
                        request.topic_data[0].name = TopicName::default();
                        request.topic_data[0].topic_id = topic_id;
                    }
                    let response: ProduceResponse = client.call(api_key, version, &request);
                    if version >= 13 {
                        assert_eq!(response.responses[0].topic_id, topic_id, "{context}");
                    }
                    let partition = &response.responses[0].partition_responses[0];
                    assert_eq!(partition.error_code, 0, "{context}");
                    assert!(partition.base_offset >= 0, "{context}");
                }
                ApiKey::Fetch => {
                    let mut request = fetch_request("versions", topic_id, 0, 0);
                    if version < 13 {
                        request.topics[0].topic_id = uuid::Uuid::nil();
                    } else {
                        request.topics[0].topic = TopicName::default();
                    }
                    let response: FetchResponse = client.call(api_key, version, &request);
                    let partition = &response.responses[0].partitions[0];
                    assert_eq!(partition.error_code, 0, "{context}");
                    assert!(partition.high_watermark > 0, "{context}");
                    assert!(!partition.records.as_ref().unwrap().is_empty(), "{context}");
                }
                ApiKey::ListOffsets => {
                    let response: ListOffsetsResponse = client.call(
                        api_key,
                        version,
                        &ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                ListOffsetsTopic::default()
                                    .with_name(name("versions"))
                                    .with_partitions(vec![
                                        ListOffsetsPartition::default()
                                            .with_partition_index(0)
                                            .with_timestamp(-1),
                                    ]),
                            ]),
                    );
                    let partition = &response.topics[0].partitions[0];
                    assert_eq!(partition.error_code, 0, "{context}");
                    assert!(partition.offset > 0, "{context}");
                }
                ApiKey::OffsetForLeaderEpoch => {
                    use crate::leader_epoch_fencing::{UNKNOWN_LEADER_EPOCH, end_of_epoch};
                    // A single node leads in epoch 0, from offset 0: epoch 0 ends at the log
                    // end, and a caller claiming epoch 1 knows a leader this one does not.
                    let (code, epoch, end_offset) =
                        end_of_epoch(&mut client, "versions", version, 0, 0);
                    assert_eq!((code, epoch), (0, 0), "{context}");
                    assert!(end_offset > 0, "{context}");
                    assert_eq!(
                        end_of_epoch(&mut client, "versions", version, 0, 1).0,
                        UNKNOWN_LEADER_EPOCH,
                        "{context}"
                    );
                }
                ApiKey::CreateTopics => {
                    // One topic for DeleteTopics, one for CreatePartitions, per version.
                    let topics = [format!("created-v{version}"), format!("grow-v{version}")];
                    let response: CreateTopicsResponse = client.call(
                        api_key,
                        version,
                        &CreateTopicsRequest::default()
                            .with_timeout_ms(5000)
                            .with_topics(
                                topics
                                    .iter()
                                    .map(|topic| {
                                        CreatableTopic::default()
                                            .with_name(name(topic))
                                            .with_num_partitions(3)
                                            .with_replication_factor(1)
                                    })
                                    .collect(),
                            ),
                    );
                    for topic in &response.topics {
                        assert_eq!(topic.error_code, 0, "{context}");
                        if version >= 5 {
                            assert_eq!(topic.num_partitions, 3, "{context}");
                        }
                    }
                }
                ApiKey::CreatePartitions => {
                    let topic = format!("grow-v{}", 2 + version);
                    let response: CreatePartitionsResponse = client.call(
                        api_key,
                        version,
                        &CreatePartitionsRequest::default()
                            .with_timeout_ms(5000)
                            .with_topics(vec![
                                CreatePartitionsTopic::default()
                                    .with_name(name(&topic))
                                    .with_count(4),
                            ]),
                    );
                    assert_eq!(response.results[0].error_code, 0, "{context}");
                }
                ApiKey::DeleteTopics => {
                    let topic = format!("created-v{}", 1 + version);
                    let request = if version >= 6 {
                        DeleteTopicsRequest::default().with_topics(vec![
                            DeleteTopicState::default().with_name(Some(name(&topic))),
                        ])
                    } else {
                        DeleteTopicsRequest::default().with_topic_names(vec![name(&topic)])
                    };
                    let response: DeleteTopicsResponse =
                        client.call(api_key, version, &request.with_timeout_ms(5000));
                    assert_eq!(response.responses[0].error_code, 0, "{context}");
                }
                ApiKey::DescribeConfigs => {
                    let response: DescribeConfigsResponse = client.call(
                        api_key,
                        version,
                        &DescribeConfigsRequest::default().with_resources(vec![
                            DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("versions")),
                            DescribeConfigsResource::default()
                                .with_resource_type(4)
                                .with_resource_name(StrBytes::from_static_str("0")),
                        ]),
                    );
                    assert_eq!(response.results[0].error_code, 0, "{context}");
                    assert!(
                        response.results[0]
                            .configs
                            .iter()
                            .any(|c| c.name.as_str() == "retention.ms"),
                        "{context}"
                    );
                    assert_eq!(response.results[1].error_code, 0, "{context}");
                }
                ApiKey::DescribeCluster => {
                    let response: DescribeClusterResponse =
                        client.call(api_key, version, &DescribeClusterRequest::default());
                    assert_eq!(response.brokers.len(), 2, "{context}");
                }
                ApiKey::FindCoordinator => {
                    let group = format!("find-{version}");
                    let request = if version >= 4 {
                        FindCoordinatorRequest::default()
                            .with_coordinator_keys(vec![StrBytes::from_string(group)])
                    } else {
                        FindCoordinatorRequest::default().with_key(StrBytes::from_string(group))
                    };
                    let response: FindCoordinatorResponse = client.call(api_key, version, &request);
                    let (error, node, port) = if version >= 4 {
                        let c = &response.coordinators[0];
                        (c.error_code, c.node_id.0, c.port)
                    } else {
                        (response.error_code, response.node_id.0, response.port)
                    };
                    assert_eq!(error, 0, "{context}");
                    assert_eq!(port as u16, broker.core_ports[node as usize], "{context}");
                }
                ApiKey::JoinGroup => {
                    let group = format!("join-{version}");
                    let mut coordinator = coordinator_client(&broker, &group);
                    let request = join_request(&group, "");
                    let response: JoinGroupResponse = coordinator.call(api_key, version, &request);
                    let response = if version >= 4 {
                        assert_eq!(response.error_code, 79, "{context}: MEMBER_ID_REQUIRED");
                        let request = join_request(&group, response.member_id.as_str());
                        coordinator.call::<_, JoinGroupResponse>(api_key, version, &request)
                    } else {
                        response
                    };
                    assert_eq!(response.error_code, 0, "{context}");
                    assert_eq!(response.generation_id, 1, "{context}");
                    assert_eq!(response.leader, response.member_id, "{context}");
                    assert_eq!(response.members.len(), 1, "{context}");
                }
                ApiKey::SyncGroup => {
                    let group = format!("sync-{version}");
                    let mut coordinator = coordinator_client(&broker, &group);
                    let (member, generation) = join(&mut coordinator, &group);
                    let response: SyncGroupResponse = coordinator.call(
                        api_key,
                        version,
                        &SyncGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_string(group)))
                            .with_member_id(member.clone())
                            .with_generation_id(generation)
                            .with_assignments(vec![
                                SyncGroupRequestAssignment::default()
                                    .with_member_id(member)
                                    .with_assignment(Bytes::from_static(b"assigned")),
                            ]),
                    );
                    assert_eq!(response.error_code, 0, "{context}");
                    assert_eq!(
                        response.assignment,
                        Bytes::from_static(b"assigned"),
                        "{context}"
                    );
                }
                ApiKey::Heartbeat | ApiKey::LeaveGroup | ApiKey::DescribeGroups => {
                    let group = format!("{api_key:?}-{version}");
                    let mut coordinator = coordinator_client(&broker, &group);
                    let (member, generation) = join(&mut coordinator, &group);
                    sync(&mut coordinator, &group, &member, generation);
                    let group_id = GroupId(StrBytes::from_string(group));
                    if api_key == ApiKey::Heartbeat {
                        let response: HeartbeatResponse = coordinator.call(
                            api_key,
                            version,
                            &HeartbeatRequest::default()
                                .with_group_id(group_id)
                                .with_member_id(member)
                                .with_generation_id(generation),
                        );
                        assert_eq!(response.error_code, 0, "{context}");
                    } else if api_key == ApiKey::LeaveGroup {
                        let request = if version >= 3 {
                            LeaveGroupRequest::default().with_group_id(group_id).with_members(vec![
                                kafka_protocol::messages::leave_group_request::MemberIdentity::default()
                                    .with_member_id(member),
                            ])
                        } else {
                            LeaveGroupRequest::default()
                                .with_group_id(group_id)
                                .with_member_id(member)
                        };
                        let response: LeaveGroupResponse =
                            coordinator.call(api_key, version, &request);
                        assert_eq!(response.error_code, 0, "{context}");
                        if version >= 3 {
                            assert_eq!(response.members[0].error_code, 0, "{context}");
                        }
                    } else {
                        let response: DescribeGroupsResponse = coordinator.call(
                            api_key,
                            version,
                            &DescribeGroupsRequest::default().with_groups(vec![group_id]),
                        );
                        let described = &response.groups[0];
                        assert_eq!(described.error_code, 0, "{context}");
                        assert_eq!(described.group_state.as_str(), "Stable", "{context}");
                        assert_eq!(described.members.len(), 1, "{context}");
                        assert_eq!(
                            described.members[0].member_assignment,
                            Bytes::from_static(b"A")
                        );
                    }
                }
                ApiKey::OffsetCommit
                | ApiKey::OffsetFetch
                | ApiKey::DeleteGroups
                | ApiKey::OffsetDelete => {
                    // A simple consumer (no membership) commits to an empty group.
                    let group = format!("{api_key:?}-{version}");
                    let mut coordinator = coordinator_client(&broker, &group);
                    let commit_version = if api_key == ApiKey::OffsetCommit {
                        version
                    } else {
                        8
                    };
                    let response: OffsetCommitResponse = coordinator.call(
                        ApiKey::OffsetCommit,
                        commit_version,
                        &commit_request(&group, "versions", 1, 42),
                    );
                    assert_eq!(response.topics[0].partitions[0].error_code, 0, "{context}");
                    if api_key == ApiKey::OffsetFetch {
                        let offset =
                            fetch_committed(&mut coordinator, version, &group, "versions", 1);
                        assert_eq!(offset, 42, "{context}");
                    } else if api_key == ApiKey::OffsetDelete {
                        use kafka_protocol::messages::offset_delete_request::{
                            OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
                        };
                        let response: OffsetDeleteResponse = coordinator.call(
                            api_key,
                            version,
                            &OffsetDeleteRequest::default()
                                .with_group_id(GroupId(StrBytes::from_string(group.clone())))
                                .with_topics(vec![
                                    OffsetDeleteRequestTopic::default()
                                        .with_name(name("versions"))
                                        .with_partitions(vec![
                                            OffsetDeleteRequestPartition::default()
                                                .with_partition_index(1),
                                        ]),
                                ]),
                        );
                        assert_eq!(response.error_code, 0, "{context}");
                        assert_eq!(response.topics[0].partitions[0].error_code, 0, "{context}");
                        assert_eq!(
                            fetch_committed(&mut coordinator, 8, &group, "versions", 1),
                            -1
                        );
                    } else if api_key == ApiKey::DeleteGroups {
                        let response: DeleteGroupsResponse = coordinator.call(
                            api_key,
                            version,
                            &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(
                                StrBytes::from_string(group.clone()),
                            )]),
                        );
                        assert_eq!(response.results[0].error_code, 0, "{context}");
                        assert_eq!(
                            fetch_committed(&mut coordinator, 8, &group, "versions", 1),
                            -1
                        );
                    }
                }
                ApiKey::InitProducerId => {
                    let response: InitProducerIdResponse = client.call(
                        api_key,
                        version,
                        &InitProducerIdRequest::default()
                            .with_transaction_timeout_ms(60_000)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1),
                    );
                    assert_eq!(response.error_code, 0, "{context}");
                    assert!(response.producer_id.0 >= 0, "{context}");
                    assert_eq!(response.producer_epoch, 0, "{context}");
                }
                ApiKey::ListGroups => {
                    let response: ListGroupsResponse =
                        client.call(api_key, version, &ListGroupsRequest::default());
                    assert_eq!(response.error_code, 0, "{context}");
                }
                ApiKey::ElectLeaders => {
                    // One replica: its only replica is the preferred one and leads.
                    let request = ElectLeadersRequest::default()
                        .with_election_type(0)
                        .with_timeout_ms(5_000)
                        .with_topic_partitions(Some(vec![
                            elect_leaders_request::TopicPartitions::default()
                                .with_topic(name("versions"))
                                .with_partitions(vec![0]),
                        ]));
                    let response: ElectLeadersResponse = client.call(api_key, version, &request);
                    let result = &response.replica_election_results[0].partition_result[0];
                    assert_eq!(result.partition_id, 0, "{context}");
                    assert_eq!(result.error_code, 84, "{context}: ELECTION_NOT_NEEDED");
                }
                ApiKey::DeleteRecords => {
                    use kafka_protocol::messages::delete_records_request::{
                        DeleteRecordsPartition, DeleteRecordsTopic,
                    };
                    // Before offset 0: nothing to delete, the low watermark stays 0.
                    let request = DeleteRecordsRequest::default()
                        .with_timeout_ms(5_000)
                        .with_topics(vec![
                            DeleteRecordsTopic::default()
                                .with_name(name("versions"))
                                .with_partitions(vec![
                                    DeleteRecordsPartition::default()
                                        .with_partition_index(0)
                                        .with_offset(0),
                                ]),
                        ]);
                    let response: DeleteRecordsResponse = client.call(api_key, version, &request);
                    let partition = &response.topics[0].partitions[0];
                    assert_eq!(partition.error_code, 0, "{context}");
                    assert_eq!(partition.low_watermark, 0, "{context}");
                }
                ApiKey::AlterConfigs => {
                    use kafka_protocol::messages::alter_configs_request::{
                        AlterConfigsResource, AlterableConfig,
                    };
                    let request = AlterConfigsRequest::default()
                        .with_validate_only(true)
                        .with_resources(vec![
                            AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("versions"))
                                .with_configs(vec![
                                    AlterableConfig::default()
                                        .with_name(StrBytes::from_static_str("retention.ms"))
                                        .with_value(Some(StrBytes::from_static_str("1000"))),
                                ]),
                        ]);
                    let response: AlterConfigsResponse = client.call(api_key, version, &request);
                    assert_eq!(response.responses[0].error_code, 0, "{context}");
                }
                ApiKey::IncrementalAlterConfigs => {
                    use kafka_protocol::messages::incremental_alter_configs_request::{
                        AlterConfigsResource, AlterableConfig,
                    };
                    let request = IncrementalAlterConfigsRequest::default()
                        .with_validate_only(true)
                        .with_resources(vec![
                            AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("versions"))
                                .with_configs(vec![
                                    AlterableConfig::default()
                                        .with_name(StrBytes::from_static_str("retention.ms"))
                                        .with_config_operation(0)
                                        .with_value(Some(StrBytes::from_static_str("1000"))),
                                ]),
                        ]);
                    let response: IncrementalAlterConfigsResponse =
                        client.call(api_key, version, &request);
                    assert_eq!(response.responses[0].error_code, 0, "{context}");
                }
                ApiKey::DescribeLogDirs => {
                    let response: DescribeLogDirsResponse =
                        client.call(api_key, version, &DescribeLogDirsRequest::default());
                    assert_eq!(response.results.len(), 1, "{context}");
                    assert_eq!(response.results[0].error_code, 0, "{context}");
                }
                ApiKey::AlterClientQuotas => {
                    use kafka_protocol::messages::alter_client_quotas_request::{
                        EntityData, EntryData, OpData,
                    };
                    use kafka_protocol::messages::{
                        AlterClientQuotasRequest, AlterClientQuotasResponse,
                    };
                    let request = AlterClientQuotasRequest::default().with_entries(vec![
                        EntryData::default()
                            .with_entity(vec![
                                EntityData::default()
                                    .with_entity_type(StrBytes::from_static_str("client-id"))
                                    .with_entity_name(Some(StrBytes::from_static_str("v"))),
                            ])
                            .with_ops(vec![
                                OpData::default()
                                    .with_key(StrBytes::from_static_str("consumer_byte_rate"))
                                    .with_value(1e9),
                            ]),
                    ]);
                    let response: AlterClientQuotasResponse =
                        client.call(api_key, version, &request);
                    assert_eq!(response.entries.len(), 1, "{context}");
                    assert_eq!(response.entries[0].error_code, 0, "{context}");
                }
                ApiKey::DescribeClientQuotas => {
                    use kafka_protocol::messages::{
                        DescribeClientQuotasRequest, DescribeClientQuotasResponse,
                    };
                    let response: DescribeClientQuotasResponse =
                        client.call(api_key, version, &DescribeClientQuotasRequest::default());
                    assert_eq!(response.error_code, 0, "{context}");
                    assert!(response.entries.is_some(), "{context}");
                }
                ApiKey::AlterPartitionReassignments => {
                    use kafka_protocol::messages::alter_partition_reassignments_request::{
                        ReassignablePartition, ReassignableTopic,
                    };
                    use kafka_protocol::messages::{
                        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
                    };
                    // Nothing under way to cancel; a broker that does not exist.
                    let request = AlterPartitionReassignmentsRequest::default()
                        .with_timeout_ms(5_000)
                        .with_topics(vec![
                            ReassignableTopic::default()
                                .with_name(name("versions"))
                                .with_partitions(vec![
                                    ReassignablePartition::default().with_partition_index(0),
                                    ReassignablePartition::default()
                                        .with_partition_index(0)
                                        .with_replicas(Some(vec![BrokerId(7777)])),
                                ]),
                        ]);
                    let response: AlterPartitionReassignmentsResponse =
                        client.call(api_key, version, &request);
                    assert_eq!(response.error_code, 0, "{context}");
                    let codes: Vec<i16> = response.responses[0]
                        .partitions
                        .iter()
                        .map(|p| p.error_code)
                        .collect();
                    assert_eq!(
                        codes,
                        [85, 39],
                        "{context}: NO_REASSIGNMENT_IN_PROGRESS, INVALID_REPLICA_ASSIGNMENT"
                    );
                }
                ApiKey::ListPartitionReassignments => {
                    use kafka_protocol::messages::{
                        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
                    };
                    let response: ListPartitionReassignmentsResponse = client.call(
                        api_key,
                        version,
                        &ListPartitionReassignmentsRequest::default(),
                    );
                    assert_eq!(response.error_code, 0, "{context}");
                    assert!(response.topics.is_empty(), "{context}: nothing under way");
                }
                other => panic!("no check written for {other:?}"),
            }
            served += 1;
        }
    }
    assert!(served > 110, "only {served} versions checked");
}

#[test]
fn unsupported_versions_and_apis_get_unsupported_version() {
    let dir = temp_dir("unsupported");
    let broker = Broker::start(dir.path(), &[]);
    let mut client = RawClient::connect(&broker.bootstrap);
    // ApiVersions at a version from the future: Kafka's v0 fallback, then the client retries.
    let correlation_id =
        client.send_claiming(ApiKey::ApiVersions, 3, 9, &ApiVersionsRequest::default());
    let response: ApiVersionsResponse = client.receive(ApiKey::ApiVersions, 0, correlation_id);
    assert_eq!(response.error_code, 35);
    assert!(
        response
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16 && k.max_version == 13)
    );
    // An API Spindle does not serve (DescribeAcls): error 35, connection stays open.
    let correlation_id = client.send(ApiKey::DescribeAcls, 1, &DescribeAclsRequest::default());
    let mut frame = client.receive_frame().expect("an answer");
    use bytes::Buf;
    assert_eq!(frame.get_i32(), correlation_id);
    assert_eq!(frame.get_i16(), 35);
    let response: ApiVersionsResponse =
        client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let dir = temp_dir("malformed");
    let broker = Broker::start(dir.path(), &["--max-request-bytes", "65536"]);
    use std::io::Write;
    // A body that does not decode as the Metadata request it claims to be.
    let mut bad = RawClient::connect(&broker.bootstrap);
    let garbage = [
        0u8, 0, 0, 12, 0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f,
    ];
    bad.stream.write_all(&garbage).unwrap();
    assert!(bad.is_closed_within(Duration::from_secs(10)));
    // A frame over --max-request-bytes.
    let mut big = RawClient::connect(&broker.bootstrap);
    big.stream.write_all(&(1i32 << 20).to_be_bytes()).unwrap();
    assert!(big.is_closed_within(Duration::from_secs(10)));
    // A negative size.
    let mut negative = RawClient::connect(&broker.bootstrap);
    negative.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(negative.is_closed_within(Duration::from_secs(10)));
    // Everyone else is served.
    let mut good = RawClient::connect(&broker.bootstrap);
    let response: ApiVersionsResponse =
        good.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
}

#[test]
fn bad_partitions_get_their_own_errors_and_the_rest_succeeds() {
    let dir = temp_dir("partition-errors");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "mixed", 2);
    let owner = leader(&mut admin, "mixed", 0);
    let other = 1 - owner;
    assert_eq!(
        leader(&mut admin, "mixed", 1),
        other,
        "placement spreads partitions"
    );
    let mut client = RawClient::connect(&broker.core_address(owner));
    let mut corrupt = batch(&["corrupt"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("mixed"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&["good"]))),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(Some(batch(&["elsewhere"]))),
                    PartitionProduceData::default()
                        .with_index(7)
                        .with_records(Some(batch(&["no such"]))),
                ]),
            TopicProduceData::default()
                .with_name(name("absent"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&["x"]))),
                ]),
        ]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    let mixed = &response.responses[0].partition_responses;
    assert_eq!((mixed[0].error_code, mixed[0].base_offset), (0, 0));
    assert_eq!(
        mixed[1].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER from the wrong core"
    );
    assert_eq!(mixed[2].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(response.responses[1].partition_responses[0].error_code, 3);
    // A corrupt batch next to a good one in the same request.
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &produce_request(
            "mixed",
            vec![(0, Bytes::from(corrupt)), (0, batch(&["after"]))],
            1,
        ),
    );
    let partitions = &response.responses[0].partition_responses;
    assert_eq!(partitions[0].error_code, 2, "CORRUPT_MESSAGE");
    assert_eq!(
        (partitions[1].error_code, partitions[1].base_offset),
        (0, 1)
    );
    // Acks outside -1/0/1.
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &produce_request("mixed", vec![(0, batch(&["acks"]))], 2),
    );
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);
    // Fetch: out of range, wrong core, and the data that is there.
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &fetch_request("mixed", uuid::Uuid::nil(), 0, 99),
    );
    assert_eq!(
        response.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &fetch_request("mixed", uuid::Uuid::nil(), 1, 0),
    );
    assert_eq!(response.responses[0].partitions[0].error_code, 6);
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &fetch_request("mixed", uuid::Uuid::nil(), 0, 0),
    );
    let partition = &response.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 2));
    // Metadata for a missing topic without auto-creation.
    let response = metadata(&mut client, "absent");
    assert_eq!(response.topics[0].error_code, 3);
}

#[test]
fn long_poll_fetch_is_woken_by_an_append() {
    let dir = temp_dir("long-poll");
    let broker = Broker::start(dir.path(), &[]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "poll", 1);
    let owner = leader(&mut admin, "poll", 0);
    let mut consumer = RawClient::connect(&broker.core_address(owner));
    let mut producer = RawClient::connect(&broker.core_address(owner));
    let request = fetch_request("poll", uuid::Uuid::nil(), 0, 0).with_max_wait_ms(20_000);
    let started = Instant::now();
    let correlation_id = consumer.send(ApiKey::Fetch, 11, &request);
    std::thread::sleep(Duration::from_millis(300));
    let response: ProduceResponse = producer.call(
        ApiKey::Produce,
        9,
        &produce_request("poll", vec![(0, batch(&["wake"]))], 1),
    );
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let response: FetchResponse = consumer.receive(ApiKey::Fetch, 11, correlation_id);
    let waited = started.elapsed();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert!(
        !partition.records.as_ref().unwrap().is_empty(),
        "woken with the new batch"
    );
    // Woken by the append, not by the 20 s timeout.
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // An empty fetch waits for its max_wait_ms and answers with no records.
    let started = Instant::now();
    let response: FetchResponse = consumer.call(
        ApiKey::Fetch,
        11,
        &fetch_request("poll", uuid::Uuid::nil(), 0, 1).with_max_wait_ms(300),
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn sigterm_finishes_and_exits_zero_and_topics_survive() {
    let dir = temp_dir("sigterm");
    let broker = Broker::start(dir.path(), &[]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "kept", 3);
    let topic_id = metadata(&mut admin, "kept").topics[0].topic_id;
    let owner = leader(&mut admin, "kept", 2);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &produce_request("kept", vec![(2, batch(&["a", "b"]))], 1),
    );
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    let status = broker.stop();
    assert!(status.success(), "exit status {status:?}");
    let broker = Broker::start(dir.path(), &[]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    let response = metadata(&mut admin, "kept");
    assert_eq!(response.topics[0].topic_id, topic_id);
    assert_eq!(response.topics[0].partitions.len(), 3);
    let owner = response.topics[0].partitions[2].leader_id.0 as usize;
    let mut client = RawClient::connect(&broker.core_address(owner));
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &fetch_request("kept", uuid::Uuid::nil(), 2, 0),
    );
    assert_eq!(response.responses[0].partitions[0].high_watermark, 2);
}

#[test]
fn a_topic_created_through_one_core_is_visible_on_every_core_at_once() {
    let dir = temp_dir("visible");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    for round in 0..5 {
        let topic = format!("everywhere-{round}");
        let mut creator = RawClient::connect(&broker.core_address(round % 2));
        create_topic(&mut creator, &topic, 4);
        // Asked right after CreateTopics returned, the other core already knows it.
        let mut other = RawClient::connect(&broker.core_address((round + 1) % 2));
        let response = metadata(&mut other, &topic);
        assert_eq!(response.topics[0].error_code, 0, "{topic}");
        assert_eq!(response.topics[0].partitions.len(), 4);
        // And it accepts a produce for a partition it owns.
        let owned = response.topics[0]
            .partitions
            .iter()
            .find(|p| p.leader_id.0 as usize == (round + 1) % 2)
            .expect("each core owns some of 4 partitions")
            .partition_index;
        let response: ProduceResponse = other.call(
            ApiKey::Produce,
            9,
            &produce_request(&topic, vec![(owned, batch(&["x"]))], -1),
        );
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }
}

/// A batch from an idempotent producer: `build_batch` with producer id, epoch and base
/// sequence set (they are under the CRC, so it is recomputed).
fn idempotent_batch(values: &[&str], producer_id: i64, epoch: i16, base_sequence: i32) -> Bytes {
    let mut bytes = batch(values).to_vec();
    bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
    bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
    bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = spindle_protocol::record_batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

#[test]
fn idempotent_producer_state_survives_a_crash_and_a_clean_restart() {
    let dir = temp_dir("producer-state");
    let mut broker = Broker::start(dir.path(), &[]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "idempotent", 1);
    let init: InitProducerIdResponse = admin.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer_id = init.producer_id.0;
    let produce = |broker: &Broker, records: Bytes| -> (i16, i64) {
        let mut admin = RawClient::connect(&broker.bootstrap);
        let owner = leader(&mut admin, "idempotent", 0);
        let mut client = RawClient::connect(&broker.core_address(owner));
        let response: ProduceResponse = client.call(
            ApiKey::Produce,
            9,
            &produce_request("idempotent", vec![(0, records)], -1),
        );
        let partition = &response.responses[0].partition_responses[0];
        (partition.error_code, partition.base_offset)
    };
    assert_eq!(
        produce(&broker, idempotent_batch(&["a", "b"], producer_id, 0, 0)),
        (0, 0)
    );
    assert_eq!(
        produce(&broker, idempotent_batch(&["c"], producer_id, 0, 2)),
        (0, 2)
    );
    // A retry of the last batch is answered with its original offset.
    assert_eq!(
        produce(&broker, idempotent_batch(&["c"], producer_id, 0, 2)),
        (0, 2)
    );
    for restart in ["crash", "clean"] {
        if restart == "crash" {
            broker.kill();
        } else {
            assert!(broker.stop().success());
            let snapshot = dir.path().join("idempotent-0/producer-state.snapshot");
            assert!(
                snapshot.exists(),
                "a clean stop leaves a producer-state snapshot"
            );
        }
        broker = Broker::start(dir.path(), &[]);
        // Rebuilt from the log (after the crash) or the snapshot (after a clean stop).
        assert_eq!(
            produce(&broker, idempotent_batch(&["c"], producer_id, 0, 2)),
            (0, 2),
            "duplicate recognised after a {restart} restart"
        );
        assert_eq!(
            produce(&broker, idempotent_batch(&["gap"], producer_id, 0, 9)).0,
            45,
            "OUT_OF_ORDER_SEQUENCE_NUMBER after a {restart} restart"
        );
        assert_eq!(
            produce(&broker, idempotent_batch(&["old"], producer_id, -1, 3)).0,
            47,
            "INVALID_PRODUCER_EPOCH"
        );
    }
    // The next sequence is still accepted, and the log holds each batch once.
    assert_eq!(
        produce(&broker, idempotent_batch(&["d"], producer_id, 0, 3)),
        (0, 3)
    );
    let mut admin = RawClient::connect(&broker.bootstrap);
    let owner = leader(&mut admin, "idempotent", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        11,
        &fetch_request("idempotent", uuid::Uuid::nil(), 0, 0),
    );
    assert_eq!(response.responses[0].partitions[0].high_watermark, 4);
}

#[test]
fn offset_delete_refuses_a_topic_the_group_subscribes_to() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let dir = temp_dir("offset-delete");
    let broker = Broker::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"]);
    let group = "subscribed";
    let mut coordinator = coordinator_client(&broker, group);
    // A consumer subscription (version 0, topics ["orders"], null user data).
    let mut subscription = vec![0, 0, 0, 0, 0, 1, 0, 6];
    subscription.extend_from_slice(b"orders");
    subscription.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    let request = |member: &str| {
        join_request(group, member).with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from(subscription.clone())),
        ])
    };
    let first: JoinGroupResponse = coordinator.call(ApiKey::JoinGroup, 5, &request(""));
    let joined: JoinGroupResponse =
        coordinator.call(ApiKey::JoinGroup, 5, &request(first.member_id.as_str()));
    sync(
        &mut coordinator,
        group,
        &joined.member_id,
        joined.generation_id,
    );
    let delete = |topic: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(group)))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0),
                    ]),
            ])
    };
    let response: OffsetDeleteResponse =
        coordinator.call(ApiKey::OffsetDelete, 0, &delete("orders"));
    assert_eq!(
        response.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    let response: OffsetDeleteResponse =
        coordinator.call(ApiKey::OffsetDelete, 0, &delete("other"));
    assert_eq!(response.topics[0].partitions[0].error_code, 0);
    let mut other = coordinator_client(&broker, "no-such-group");
    let response: OffsetDeleteResponse = other.call(
        ApiKey::OffsetDelete,
        0,
        &delete("orders").with_group_id(GroupId(StrBytes::from_static_str("no-such-group"))),
    );
    assert_eq!(response.error_code, 69, "GROUP_ID_NOT_FOUND");
}

#[test]
fn connections_beyond_the_per_core_limit_are_closed_and_the_rest_served() {
    let dir = temp_dir("connection-limit");
    let broker = Broker::start(dir.path(), &["--max-connections-per-core", "2"]);
    let address = broker.core_address(0);
    let mut first = RawClient::connect(&address);
    let mut second = RawClient::connect(&address);
    for client in [&mut first, &mut second] {
        let response: ApiVersionsResponse =
            client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(response.error_code, 0);
    }
    let mut third = RawClient::connect(&address);
    assert!(
        third.is_closed_within(Duration::from_secs(10)),
        "over the limit: closed"
    );
    // The admitted connections keep working, and a slot frees when one leaves.
    let response: ApiVersionsResponse =
        first.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = RawClient::connect(&address);
        let correlation_id = again.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        if let Some(mut frame) = again.receive_frame() {
            use bytes::Buf;
            assert_eq!(frame.get_i32(), correlation_id);
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot is reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn huge_counts_in_small_requests_close_only_their_connection() {
    let dir = temp_dir("length-bombs");
    let mut broker = Broker::start(dir.path(), &[]);
    use std::io::Write;
    const HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
    let cat = |parts: &[&[u8]]| parts.concat();
    let bombs: Vec<(ApiKey, i16, bool, Vec<u8>)> = vec![
        (ApiKey::Metadata, 4, false, cat(&[&HUGE, &[1]])),
        // Compact: 0x7fffffff + 1 as an unsigned varint.
        (
            ApiKey::Metadata,
            12,
            true,
            vec![0x80, 0x80, 0x80, 0x80, 0x08, 1, 0, 0],
        ),
        (
            ApiKey::Produce,
            3,
            false,
            cat(&[&[0xff, 0xff, 0, 1, 0, 0, 0x27, 0x10], &HUGE]),
        ),
        (ApiKey::Fetch, 4, false, cat(&[&[0; 17], &HUGE])),
        (ApiKey::ListOffsets, 1, false, cat(&[&[0; 4], &HUGE])),
        (ApiKey::CreateTopics, 2, false, HUGE.to_vec()),
        (
            ApiKey::OffsetCommit,
            2,
            false,
            cat(&[&[0, 1, b'g'], &[0; 4], &[0, 0], &[0; 8], &HUGE]),
        ),
        (
            ApiKey::JoinGroup,
            0,
            false,
            cat(&[&[0, 1, b'g'], &[0; 4], &[0, 0], &[0, 0], &HUGE]),
        ),
        (ApiKey::DescribeGroups, 0, false, HUGE.to_vec()),
        (ApiKey::DeleteGroups, 0, false, HUGE.to_vec()),
        (ApiKey::DescribeConfigs, 1, false, HUGE.to_vec()),
        // A string length past the frame.
        (ApiKey::FindCoordinator, 0, false, vec![0x7f, 0xff, b'g']),
    ];
    for core in 0..2 {
        for (api_key, version, flexible, body) in &bombs {
            let mut bomber = RawClient::connect(&broker.core_address(core));
            bomber
                .stream
                .write_all(&raw_request_frame(
                    *api_key, *version, "bomb", *flexible, body,
                ))
                .unwrap();
            assert!(
                bomber.is_closed_within(Duration::from_secs(10)),
                "{api_key:?} v{version} on core {core}"
            );
        }
    }
    assert!(broker.is_running(), "the broker survived every bomb");
    for core in 0..2 {
        let mut good = RawClient::connect(&broker.core_address(core));
        let response: ApiVersionsResponse =
            good.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(response.error_code, 0, "core {core} still serves");
    }
}

/// Kafka answers a partition's error with empty records, never null: librdkafka rejects a
/// whole Fetch response with a null there and loops forever without seeing the error.
#[test]
fn errored_fetch_partitions_carry_empty_records_at_every_version() {
    let dir = temp_dir("fetch-errors");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "errs", 2);
    let topic_id = metadata(&mut admin, "errs").topics[0].topic_id;
    let owner = leader(&mut admin, "errs", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let _: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &produce_request("errs", vec![(0, batch(&["one"]))], 1),
    );
    let (min, max) = SERVED_APIS
        .iter()
        .find(|(key, _, _)| *key == ApiKey::Fetch)
        .map(|&(_, min, max)| (min, max))
        .unwrap();
    for version in min..=max {
        let mut request = fetch_request("errs", topic_id, 0, 1_000);
        // Partition 1 lives on the other core; partition 9 does not exist.
        for partition in [1, 9] {
            let mut wanted = request.topics[0].partitions[0].clone();
            wanted.partition = partition;
            wanted.fetch_offset = 0;
            request.topics[0].partitions.push(wanted);
        }
        let response: FetchResponse = client.call(ApiKey::Fetch, version, &request);
        let partitions = &response.responses[0].partitions;
        let codes: Vec<i16> = partitions.iter().map(|p| p.error_code).collect();
        // OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION.
        assert_eq!(codes, vec![1, 6, 3], "v{version}");
        for partition in partitions {
            assert_eq!(
                partition.records.as_deref(),
                Some(&[][..]),
                "v{version} partition {}: records must be empty, not null",
                partition.partition_index
            );
        }
    }
}

#[test]
fn transaction_coordinator_lookups_fail_fast_with_a_fatal_error() {
    let dir = temp_dir("txn-coordinator");
    let broker = Broker::start(dir.path(), &[]);
    let mut client = RawClient::connect(&broker.bootstrap);
    for version in 1..=4 {
        let mut request = FindCoordinatorRequest::default().with_key_type(1);
        if version >= 4 {
            request.coordinator_keys = vec![StrBytes::from_static_str("txn-1")];
        } else {
            request.key = StrBytes::from_static_str("txn-1");
        }
        let response: FindCoordinatorResponse =
            client.call(ApiKey::FindCoordinator, version, &request);
        let code = if version >= 4 {
            response.coordinators[0].error_code
        } else {
            response.error_code
        };
        // TRANSACTIONAL_ID_AUTHORIZATION_FAILED: fatal in the Java client and librdkafka;
        // COORDINATOR_NOT_AVAILABLE would be retried until the client's own timeout.
        assert_eq!(code, 53, "v{version}");
    }
}

#[test]
fn list_offsets_max_timestamp_finds_the_first_record_with_the_largest_timestamp() {
    use spindle_protocol::record_batch::build_batch_with_timestamps;
    let dir = temp_dir("max-timestamp");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "times", 1);
    let owner = leader(&mut admin, "times", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let list = |client: &mut RawClient, version: i16| -> (i16, i64, i64) {
        let response: ListOffsetsResponse = client.call(
            ApiKey::ListOffsets,
            version,
            &ListOffsetsRequest::default().with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("times"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-3),
                    ]),
            ]),
        );
        let partition = &response.topics[0].partitions[0];
        (partition.error_code, partition.offset, partition.timestamp)
    };
    assert_eq!(list(&mut client, 7), (0, -1, -1), "an empty log");
    // Offsets 0-1 at t and t+1, 2-3 at t+900 and t+500, 4 at t+900 again, 5 at t+100.
    let t = 1_700_000_000_000i64;
    for timestamps in [
        vec![t, t + 1],
        vec![t + 900, t + 500],
        vec![t + 900],
        vec![t + 100],
    ] {
        let records: Vec<spindle_protocol::record_batch::TimedRecord> =
            timestamps.iter().map(|&ts| (ts, None, &b"v"[..])).collect();
        let _: ProduceResponse = client.call(
            ApiKey::Produce,
            9,
            &produce_request(
                "times",
                vec![(0, Bytes::from(build_batch_with_timestamps(&records)))],
                -1,
            ),
        );
    }
    for version in 7..=10 {
        assert_eq!(list(&mut client, version), (0, 2, t + 900), "v{version}");
    }
}

/// What Kafka's LogValidator refuses, refused here too, per partition: the high watermark
/// does not move and the next good batch gets the next offset.
#[test]
fn batches_whose_records_contradict_their_header_are_refused() {
    use spindle_protocol::compression::{Codec, compress_batch};
    let dir = temp_dir("lying-batches");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "lies", 1);
    let owner = leader(&mut admin, "lies", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    // Records_count and last_offset_delta rewritten to `count`, CRC recomputed.
    let recount = |batch: &[u8], count: i32| -> Bytes {
        let mut out = batch.to_vec();
        out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        out[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    };
    let values: Vec<String> = (0..20).map(|i| format!("record {i}")).collect();
    let plain = batch(&values.iter().map(String::as_str).collect::<Vec<_>>());
    let zstd = compress_batch(&plain, Codec::Zstd).unwrap();
    let mut corrupt_lz4 = compress_batch(&plain, Codec::Lz4).unwrap();
    let middle = 61 + (corrupt_lz4.len() - 61) / 2;
    corrupt_lz4[middle] ^= 0xff;
    let crc = crc32c::crc32c(&corrupt_lz4[21..]);
    corrupt_lz4[17..21].copy_from_slice(&crc.to_be_bytes());
    let produce = |client: &mut RawClient, records: Bytes| -> (i16, i64) {
        let response: ProduceResponse = client.call(
            ApiKey::Produce,
            9,
            &produce_request("lies", vec![(0, records)], -1),
        );
        let partition = &response.responses[0].partition_responses[0];
        (partition.error_code, partition.base_offset)
    };
    for (what, lying) in [
        (
            "20 records counted as 1,000,000 (zstd)",
            recount(&zstd, 1_000_000),
        ),
        ("20 records counted as 3 (zstd)", recount(&zstd, 3)),
        ("20 records counted as 3", recount(&plain, 3)),
        ("a corrupt lz4 payload", Bytes::from(corrupt_lz4.clone())),
    ] {
        let (code, _) = produce(&mut client, lying);
        assert!(code == 2 || code == 87, "{what}: error {code}");
    }
    assert_eq!(
        produce(&mut client, Bytes::from(zstd)),
        (0, 0),
        "offsets not consumed"
    );
    assert_eq!(produce(&mut client, plain), (0, 20));
}

/// A long-poll with a large min_bytes answers once its partitions together hold that
/// much, not before (small appends do not answer it) and not later (bytes spread over two
/// partitions count together).
#[test]
fn long_poll_fetch_with_min_bytes_answers_when_its_partitions_together_reach_it() {
    let dir = temp_dir("min-bytes");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "bulk", 4);
    // Two partitions owned by the same core.
    let owners: Vec<usize> = (0..4).map(|p| leader(&mut admin, "bulk", p)).collect();
    let core = owners[0];
    let partitions: Vec<i32> = (0..4).filter(|&p| owners[p as usize] == core).collect();
    assert!(partitions.len() >= 2, "{owners:?}");
    let (a, b) = (partitions[0], partitions[1]);
    let mut consumer = RawClient::connect(&broker.core_address(core));
    let mut producer = RawClient::connect(&broker.core_address(core));
    let mut request = fetch_request("bulk", uuid::Uuid::nil(), a, 0)
        .with_max_wait_ms(20_000)
        .with_min_bytes(20_000);
    let mut second = request.topics[0].partitions[0].clone();
    second.partition = b;
    request.topics[0].partitions.push(second);
    let value = "v".repeat(1000);
    let values = |n: usize| -> Bytes { batch(&vec![value.as_str(); n]) };
    let mut produce = |partition: i32, records: Bytes| {
        let response: ProduceResponse = producer.call(
            ApiKey::Produce,
            9,
            &produce_request("bulk", vec![(partition, records)], 1),
        );
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    };
    let correlation_id = consumer.send(ApiKey::Fetch, 11, &request);
    std::thread::sleep(Duration::from_millis(200));
    // About 5 KB, then 6 KB more elsewhere: 11 KB is short of 20 KB.
    produce(a, values(5));
    produce(b, values(6));
    consumer
        .stream
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut size = [0u8; 4];
    assert!(
        std::io::Read::read_exact(&mut consumer.stream, &mut size).is_err(),
        "answered before min_bytes was reached"
    );
    consumer
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // 10 KB more on the first: 21 KB in all.
    let started = Instant::now();
    produce(a, values(10));
    let response: FetchResponse = consumer.receive(ApiKey::Fetch, 11, correlation_id);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered {:?} after min_bytes was reached",
        started.elapsed()
    );
    let bytes: usize = response.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    assert!(bytes >= 20_000, "{bytes} bytes");
}

/// A topic may trade the decompression of compressed batches for CPU
/// (`validate.compressed.records=false`): their header and CRC are still checked, and
/// uncompressed batches are still validated record by record.
#[test]
fn a_topic_can_turn_off_decompressing_validation() {
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    use spindle_protocol::compression::{Codec, compress_batch};
    let dir = temp_dir("no-decompress");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    let response: CreateTopicsResponse = admin.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name("trusting"))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(vec![
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_static_str("validate.compressed.records"))
                        .with_value(Some(StrBytes::from_static_str("false"))),
                ]),
        ]),
    );
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
    let owner = leader(&mut admin, "trusting", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let mut corrupt = compress_batch(&batch(&["a", "b", "c"]), Codec::Lz4).unwrap();
    let middle = 61 + (corrupt.len() - 61) / 2;
    corrupt[middle] ^= 0xff;
    let crc = crc32c::crc32c(&corrupt[21..]);
    corrupt[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut lying_plain = batch(&["a", "b", "c"]).to_vec();
    lying_plain[23..27].copy_from_slice(&1i32.to_be_bytes());
    lying_plain[57..61].copy_from_slice(&2i32.to_be_bytes());
    let crc = crc32c::crc32c(&lying_plain[21..]);
    lying_plain[17..21].copy_from_slice(&crc.to_be_bytes());
    let code = |client: &mut RawClient, records: Vec<u8>| -> i16 {
        let response: ProduceResponse = client.call(
            ApiKey::Produce,
            9,
            &produce_request("trusting", vec![(0, Bytes::from(records))], 1),
        );
        response.responses[0].partition_responses[0].error_code
    };
    assert_eq!(
        code(&mut client, corrupt),
        0,
        "stored as sent, not decompressed"
    );
    assert_ne!(
        code(&mut client, lying_plain),
        0,
        "uncompressed still validated"
    );
}

/// Parked long-polls are bounded per core: past the bound a fetch is answered at once,
/// with a throttle time for the rest of its wait, and the bound frees as fetches finish.
#[test]
fn parked_fetches_are_bounded_per_core() {
    let dir = temp_dir("parked-bound");
    let broker = Broker::start(dir.path(), &["--max-parked-fetches-per-core", "2"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "quiet", 1);
    let owner = leader(&mut admin, "quiet", 0);
    let request = fetch_request("quiet", uuid::Uuid::nil(), 0, 0).with_max_wait_ms(3_000);
    let mut parked: Vec<(RawClient, i32)> = (0..2)
        .map(|_| {
            let mut client = RawClient::connect(&broker.core_address(owner));
            let id = client.send(ApiKey::Fetch, 11, &request);
            (client, id)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = RawClient::connect(&broker.core_address(owner));
    let started = Instant::now();
    let response: FetchResponse = third.call(ApiKey::Fetch, 11, &request);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once past the bound"
    );
    assert!(
        response.throttle_time_ms > 1_000,
        "throttle {} ms",
        response.throttle_time_ms
    );
    for (client, id) in &mut parked {
        let response: FetchResponse = client.receive(ApiKey::Fetch, 11, *id);
        assert_eq!(response.throttle_time_ms, 0, "the parked ones waited here");
    }
    // Both places are free again: a new fetch parks (waits its max_wait_ms).
    let started = Instant::now();
    let response: FetchResponse =
        third.call(ApiKey::Fetch, 11, &request.clone().with_max_wait_ms(500));
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(response.throttle_time_ms, 0);
}

/// acks=0 gets no answer, however long its data takes to be written, and the requests after
/// it on the same connection are answered in order.
#[test]
fn acks_zero_is_never_answered_and_what_follows_is() {
    let dir = temp_dir("acks-zero");
    let broker = Broker::start(dir.path(), &["--auto-create-topics", "false"]);
    let mut admin = RawClient::connect(&broker.bootstrap);
    create_topic(&mut admin, "silent", 1);
    let owner = leader(&mut admin, "silent", 0);
    let mut client = RawClient::connect(&broker.core_address(owner));
    let values: Vec<String> = (0..50).map(|i| format!("record {i}")).collect();
    let records = batch(&values.iter().map(String::as_str).collect::<Vec<_>>());
    for _ in 0..20 {
        client.send(
            ApiKey::Produce,
            9,
            &produce_request("silent", vec![(0, records.clone())], 0),
        );
    }
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &produce_request("silent", vec![(0, records.clone())], 1),
    );
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!((partition.error_code, partition.base_offset), (0, 1_000));
}
