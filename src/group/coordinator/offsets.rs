//! Committed offsets: validating and persisting OffsetCommit, answering OffsetFetch, and
//! OffsetDelete. Runs on the coordinator core.

use crate::group::GroupCoordinator;
use crate::group::records::{CommittedOffset, RecordKey, RecordValue};
use crate::group::state::{Group, GroupState, subscribed_topics};
use spindle_protocol::ErrorCode;

impl GroupCoordinator {
    // ----- offsets -----

    /// Checks that `member_id` of `generation_id` may commit for `group_id` (Kafka's rules:
    /// a simple consumer, generation -1 and no member id, may commit to a group with no
    /// members).
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
    ) -> ErrorCode {
        let groups = self.groups.borrow();
        let Some(group) = groups.get(group_id) else {
            return if generation_id < 0 && member_id.is_empty() {
                ErrorCode::None
            } else {
                ErrorCode::IllegalGeneration
            };
        };
        if generation_id < 0 && member_id.is_empty() {
            return if group.members.is_empty() {
                ErrorCode::None
            } else {
                ErrorCode::IllegalGeneration
            };
        }
        if group.member(member_id).is_none() {
            return ErrorCode::UnknownMemberId;
        }
        if generation_id != group.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        if group.state == GroupState::CompletingRebalance {
            return ErrorCode::RebalanceInProgress;
        }
        ErrorCode::None
    }

    /// Stores committed offsets durably; returns once they are. `Err` is the code every
    /// partition gets when the group log could not take them.
    pub async fn commit(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ErrorCode> {
        let records: Vec<(RecordKey, RecordValue)> = offsets
            .iter()
            .map(|(topic, partition, committed)| {
                (
                    RecordKey::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    RecordValue::Offset(committed.clone()),
                )
            })
            .collect();
        self.write(self.home_partition(group_id), &records).await?;
        let mut all = self.offsets.borrow_mut();
        let stored = all.entry(group_id.to_string()).or_default();
        for (topic, partition, committed) in offsets {
            stored.insert((topic, partition), committed);
        }
        drop(all);
        self.groups
            .borrow_mut()
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        Ok(())
    }

    /// Every committed offset of every group on this core: `(group, topic, partition,
    /// offset)`, for the metrics.
    pub fn all_committed(&self) -> Vec<(String, String, i32, i64)> {
        self.offsets
            .borrow()
            .iter()
            .flat_map(|(group, offsets)| {
                offsets.iter().map(move |((topic, partition), committed)| {
                    (group.clone(), topic.clone(), *partition, committed.offset)
                })
            })
            .collect()
    }

    /// The committed offset of each asked partition (`None`: nothing committed), or of every
    /// partition the group committed when `partitions` is `None`.
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let all = self.offsets.borrow();
        let stored = all.get(group_id);
        match partitions {
            Some(partitions) => partitions
                .into_iter()
                .map(|(topic, partition)| {
                    let committed =
                        stored.and_then(|s| s.get(&(topic.clone(), partition)).cloned());
                    (topic, partition, committed)
                })
                .collect(),
            None => stored
                .map(|s| {
                    s.iter()
                        .map(|((topic, partition), c)| (topic.clone(), *partition, Some(c.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// OffsetDelete: removes committed offsets of partitions no member subscribes to.
    /// `Err` is the group-level error; otherwise one code per asked partition.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let subscribed: Vec<String> = {
            let groups = self.groups.borrow();
            let Some(group) = groups.get(group_id) else {
                return Err(ErrorCode::GroupIdNotFound);
            };
            if !group.members.is_empty() && group.protocol_type.as_deref() != Some("consumer") {
                return Err(ErrorCode::NonEmptyGroup);
            }
            let protocol = group.protocol_name.clone().unwrap_or_default();
            group
                .members
                .iter()
                .flat_map(|m| {
                    m.protocols
                        .iter()
                        .filter(|(name, _)| *name == protocol)
                        .flat_map(|(_, metadata)| subscribed_topics(metadata).unwrap_or_default())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let errors: Vec<ErrorCode> = partitions
            .iter()
            .map(|(topic, _)| {
                if subscribed.contains(topic) {
                    ErrorCode::GroupSubscribedToTopic
                } else {
                    ErrorCode::None
                }
            })
            .collect();
        let records: Vec<(RecordKey, RecordValue)> = partitions
            .iter()
            .zip(&errors)
            .filter(|(_, error)| **error == ErrorCode::None)
            .map(|((topic, partition), _)| {
                (
                    RecordKey::Offset {
                        group: group_id.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    RecordValue::Tombstone,
                )
            })
            .collect();
        if let Err(code) = self.write(self.home_partition(group_id), &records).await {
            tracing::warn!(core = self.core, "deleting offsets of {group_id}: {code:?}");
            return Err(code);
        }
        if let Some(stored) = self.offsets.borrow_mut().get_mut(group_id) {
            for ((topic, partition), error) in partitions.iter().zip(&errors) {
                if *error == ErrorCode::None {
                    stored.remove(&(topic.clone(), *partition));
                }
            }
        }
        Ok(errors)
    }
}
