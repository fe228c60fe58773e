//! `topic consume --group` as a member of the group, as Kafka's console consumer and rpk
//! are: JoinGroup with the classic consumer protocol and the range assignor (this member
//! assigns when the coordinator makes it the leader), SyncGroup, a Heartbeat every few
//! seconds while it reads, OffsetCommit under its generation, and LeaveGroup at the end, so
//! that several `consume --group` processes (or any Kafka consumers) share the partitions.
//! Main thread, blocking requests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::client::Cluster;
use super::error_text;

/// Kafka's consumer defaults, shortened where an admin tool wants quick rebalances.
const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 10_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
const ASSIGNOR: &str = "range";

/// Kafka's error codes this member reacts to.
const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const MEMBER_ID_REQUIRED: i16 = 79;

/// A member of `group` consuming `topic`.
pub struct Member {
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    last_heartbeat: Instant,
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// A consumer-protocol message as the group carries it: its version, then its body.
fn versioned<M: Encodable>(message: &M, version: i16) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(version);
    message
        .encode(&mut out, version)
        .expect("a consumer-protocol message encodes");
    out.freeze()
}

fn decode_versioned<M: Decodable>(bytes: &Bytes) -> Option<M> {
    let mut bytes = bytes.clone();
    if bytes.remaining() < 2 {
        return None;
    }
    let version = bytes.get_i16();
    M::decode(&mut bytes, version).ok()
}

/// Kafka's RangeAssignor: for each topic, its partitions in order, split into contiguous
/// ranges over the members subscribed to it (sorted by id), the first ones one longer.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut assignments: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|member| (member.clone(), BTreeMap::new()))
        .collect();
    let topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
    for topic in topics {
        let Some(&count) = partition_counts.get(topic) else {
            continue;
        };
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(member, _)| member)
            .collect();
        let (each, extra) = (
            count as usize / members.len(),
            count as usize % members.len(),
        );
        let mut next = 0i32;
        for (index, member) in members.into_iter().enumerate() {
            let take = each + usize::from(index < extra);
            let partitions: Vec<i32> = (next..next + take as i32).collect();
            next += take as i32;
            if !partitions.is_empty() {
                assignments
                    .get_mut(member)
                    .expect("every member has an entry")
                    .insert(topic.clone(), partitions);
            }
        }
    }
    assignments
}

impl Member {
    /// Joins `group` for `topic`; returns the member and the partitions of `topic` it was
    /// given.
    pub fn join(
        cluster: &mut Cluster,
        group: &str,
        topic: &str,
    ) -> Result<(Member, Vec<i32>), String> {
        let mut member = Member {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            last_heartbeat: Instant::now(),
        };
        let partitions = member.rejoin(cluster)?;
        Ok((member, partitions))
    }

    /// One round of JoinGroup and SyncGroup; the partitions of the topic now assigned.
    pub fn rejoin(&mut self, cluster: &mut Cluster) -> Result<Vec<i32>, String> {
        let subscription = versioned(
            &ConsumerProtocolSubscription::default().with_topics(vec![s(&self.topic)]),
            0,
        );
        let joined = loop {
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(s(&self.member_id))
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(s(ASSIGNOR))
                        .with_metadata(subscription.clone()),
                ]);
            let response: JoinGroupResponse = super::group::coordinator(cluster, &self.group)?
                .call(ApiKey::JoinGroup, 5, &request)?;
            match response.error_code {
                0 => break response,
                // The coordinator names this member's id and asks it to join with it.
                MEMBER_ID_REQUIRED => self.member_id = response.member_id.to_string(),
                UNKNOWN_MEMBER_ID => self.member_id.clear(),
                code => {
                    return Err(format!(
                        "joining group '{}': {}",
                        self.group,
                        error_text(code)
                    ));
                }
            }
        };
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let assignments = if joined.leader.as_str() == self.member_id {
            self.assign(cluster, &joined)?
        } else {
            Vec::new()
        };
        let response: SyncGroupResponse = super::group::coordinator(cluster, &self.group)?.call(
            ApiKey::SyncGroup,
            3,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(s(&self.member_id))
                .with_assignments(assignments),
        )?;
        match response.error_code {
            0 => {}
            REBALANCE_IN_PROGRESS => return self.rejoin(cluster),
            code => {
                return Err(format!(
                    "syncing group '{}': {}",
                    self.group,
                    error_text(code)
                ));
            }
        }
        self.last_heartbeat = Instant::now();
        let assignment: ConsumerProtocolAssignment =
            decode_versioned(&response.assignment).unwrap_or_default();
        Ok(assignment
            .assigned_partitions
            .iter()
            .filter(|assigned| assigned.topic.as_str() == self.topic)
            .flat_map(|assigned| assigned.partitions.iter().copied())
            .collect())
    }

    /// As the leader: every member's range assignment, from their subscriptions and the
    /// topics' partition counts.
    fn assign(
        &self,
        cluster: &mut Cluster,
        joined: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, String> {
        let subscriptions: BTreeMap<String, Vec<String>> = joined
            .members
            .iter()
            .map(|member| {
                let subscription: ConsumerProtocolSubscription =
                    decode_versioned(&member.metadata).unwrap_or_default();
                (
                    member.member_id.to_string(),
                    subscription.topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect();
        let topics: BTreeSet<String> = subscriptions.values().flatten().cloned().collect();
        let metadata = cluster.metadata(Some(topics.into_iter().collect()))?;
        let counts: BTreeMap<String, i32> = metadata
            .topics
            .iter()
            .filter(|topic| topic.error_code == 0)
            .filter_map(|topic| {
                let name = topic.name.as_ref()?.to_string();
                Some((name, topic.partitions.len() as i32))
            })
            .collect();
        Ok(range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, topics)| {
                let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicPartition::default()
                                .with_topic(TopicName(s(&topic)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                );
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(versioned(&assignment, 0))
            })
            .collect())
    }

    /// A heartbeat when one is due. `Ok(true)`: the group is rebalancing (or forgot this
    /// member), so the caller commits what it read and rejoins.
    pub fn heartbeat(&mut self, cluster: &mut Cluster) -> Result<bool, String> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(false);
        }
        let response: HeartbeatResponse = super::group::coordinator(cluster, &self.group)?.call(
            ApiKey::Heartbeat,
            3,
            &HeartbeatRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(s(&self.member_id)),
        )?;
        self.last_heartbeat = Instant::now();
        match response.error_code {
            0 => Ok(false),
            REBALANCE_IN_PROGRESS => Ok(true),
            UNKNOWN_MEMBER_ID | ILLEGAL_GENERATION => {
                self.member_id.clear();
                Ok(true)
            }
            code => Err(format!(
                "heartbeat to group '{}': {}",
                self.group,
                error_text(code)
            )),
        }
    }

    /// Commits `positions` of the topic under this member's generation; per partition,
    /// its error code.
    pub fn commit(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<Vec<(i32, i16)>, String> {
        super::records::commit_as(
            cluster,
            &self.group,
            &self.topic,
            positions,
            self.generation,
            &self.member_id,
        )
    }

    /// Leaves the group, so its partitions go to the other members at once.
    pub fn leave(self, cluster: &mut Cluster) -> Result<(), String> {
        let response: LeaveGroupResponse = super::group::coordinator(cluster, &self.group)?.call(
            ApiKey::LeaveGroup,
            3,
            &LeaveGroupRequest::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_members(vec![
                    MemberIdentity::default().with_member_id(s(&self.member_id)),
                ]),
        )?;
        match response.error_code {
            0 | UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(format!(
                "leaving group '{}': {}",
                self.group,
                error_text(code)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_each_topic_over_its_subscribers_the_first_ones_longer() {
        let subscriptions = BTreeMap::from([
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("b".to_string(), vec!["t".to_string()]),
            ("c".to_string(), vec!["t".to_string()]),
        ]);
        let counts = BTreeMap::from([("t".to_string(), 7), ("u".to_string(), 2)]);
        let assigned = range_assign(&subscriptions, &counts);
        assert_eq!(assigned["a"]["t"], vec![0, 1, 2]);
        assert_eq!(assigned["b"]["t"], vec![3, 4]);
        assert_eq!(assigned["c"]["t"], vec![5, 6]);
        assert_eq!(assigned["a"]["u"], vec![0, 1]);
        assert!(!assigned["b"].contains_key("u"));
        // More members than partitions: the last ones get none.
        let counts = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let assigned = range_assign(&subscriptions, &counts);
        assert!(assigned["c"].is_empty());
        // A topic whose partition count is unknown is left out.
        let assigned = range_assign(&subscriptions, &BTreeMap::new());
        assert!(assigned.values().all(BTreeMap::is_empty));
    }

    #[test]
    fn consumer_protocol_messages_round_trip_with_their_version() {
        let subscription = ConsumerProtocolSubscription::default().with_topics(vec![s("t")]);
        let bytes = versioned(&subscription, 0);
        assert_eq!(&bytes[..2], &[0, 0]);
        let decoded: ConsumerProtocolSubscription = decode_versioned(&bytes).unwrap();
        assert_eq!(decoded.topics, vec![s("t")]);
        assert!(
            decode_versioned::<ConsumerProtocolSubscription>(&Bytes::from_static(b"x")).is_none()
        );
    }
}
