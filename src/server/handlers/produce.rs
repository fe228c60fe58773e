//! Produce: appends each partition's record batches to the log this core owns, in request
//! order, then answers when the acks level is met: acks=1 once the batch is written to the
//! file, acks=-1 (all) once it is durable (fdatasync, shared by every request waiting at
//! that moment; with `write.caching` once written, as Kafka does), acks=0 never (its reply future still resolves once the data is written,
//! so the request's bytes stay budgeted until then).
//!
//! Zero copy: the batches are carved out of the request buffer as `BytesMut` (the decoded
//! request is dropped first so the buffer is unshared); the log copies each batch once,
//! into its direct-I/O write buffer.

use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{FAULT_INJECTION, Reply, RequestContext, auto_create_topics};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::producer::SequenceCheck;
use crate::server::error_codes::ToErrorCode;
use crate::shard::replication::LeaderState;
use crate::shard::{Log, OwnedPartition, Shard};
use crate::storage::AppendInfo;
use spindle_protocol::ErrorCode;
use spindle_protocol::RecordBatchHeader;
use spindle_protocol::record_batch::next_batch_bytes;

struct PartitionPlan {
    index: i32,
    /// Where the partition's records sit in the request buffer.
    records: Option<Range<usize>>,
}

struct TopicPlan {
    /// Empty when a v13+ request names a topic id that does not exist.
    name: String,
    topic_id: uuid::Uuid,
    partitions: Vec<PartitionPlan>,
}

/// One partition's result so far.
struct Outcome {
    index: i32,
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_start_offset: i64,
    /// The log and the offset to wait for, when appends succeeded.
    wait: Option<(Log, i64)>,
    /// For a replicated partition, the leader's view of its followers (acks=all waits
    /// for them too).
    replication: Option<Rc<LeaderState>>,
    /// The topic's `min.insync.replicas`.
    min_in_sync: usize,
}

/// Why an appended batch is not acknowledged.
enum NotEnoughReplicas {
    Storage(crate::storage::StorageError),
    /// The in-sync set shrank below `min.insync.replicas` while it waited.
    AfterAppend,
    /// This replica stopped leading while it waited.
    NotLeader,
}

impl From<crate::storage::StorageError> for NotEnoughReplicas {
    fn from(error: crate::storage::StorageError) -> Self {
        NotEnoughReplicas::Storage(error)
    }
}

impl Outcome {
    fn failed(index: i32, error: ErrorCode, message: Option<String>) -> Outcome {
        Outcome {
            index,
            error,
            message,
            base_offset: -1,
            log_start_offset: -1,
            wait: None,
            replication: None,
            min_in_sync: 1,
        }
    }
}

pub async fn produce(
    shard: &Rc<Shard>,
    context: RequestContext,
    request: ProduceRequest,
    frame: Bytes,
    throttle_ms: i32,
) -> Reply {
    let acks = request.acks;
    let timeout = Duration::from_millis(request.timeout_ms.clamp(0, 300_000) as u64);
    let transactional = request.transactional_id.is_some();
    let frame_start = frame.as_ptr() as usize;
    let frame_end = frame_start + frame.len();
    // v13+ names topics by id.
    let by_id = context.api_version >= 13;
    let known = shard.snapshot();
    let plans: Vec<TopicPlan> = request
        .topic_data
        .iter()
        .map(|topic| TopicPlan {
            name: if by_id {
                known
                    .topic_by_id(&topic.topic_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            } else {
                topic.name.as_str().to_string()
            },
            topic_id: topic.topic_id,
            partitions: topic
                .partition_data
                .iter()
                .map(|partition| PartitionPlan {
                    index: partition.index,
                    records: partition.records.as_ref().and_then(|records| {
                        let start = records.as_ptr() as usize;
                        (!records.is_empty()
                            && start >= frame_start
                            && start + records.len() <= frame_end)
                            .then(|| start - frame_start..start - frame_start + records.len())
                    }),
                })
                .collect(),
        })
        .collect();
    drop(request);
    let mut pieces = carve(frame, &plans);

    let snapshot = shard.snapshot();
    drop(known);
    let missing: Vec<String> = plans
        .iter()
        .filter(|plan| !by_id && snapshot.topic(&plan.name).is_none())
        .map(|plan| plan.name.clone())
        .collect();
    drop(snapshot);
    auto_create_topics(shard, missing).await;

    let mut results: Vec<(String, uuid::Uuid, Vec<Outcome>)> = Vec::with_capacity(plans.len());
    for plan in &plans {
        let mut outcomes = Vec::with_capacity(plan.partitions.len());
        for partition in &plan.partitions {
            let records = pieces.next().expect("one piece per partition");
            let outcome = if !(-1..=1).contains(&acks) {
                Outcome::failed(partition.index, ErrorCode::InvalidRequiredAcks, None)
            } else if by_id && plan.name.is_empty() {
                Outcome::failed(partition.index, ErrorCode::UnknownTopicId, None)
            } else if plan.name == OFFSETS_TOPIC {
                // Only the group coordinators write the groups' records (Kafka: "Cannot
                // append to internal topic").
                Outcome::failed(
                    partition.index,
                    ErrorCode::InvalidTopicException,
                    Some(format!("{OFFSETS_TOPIC} is internal")),
                )
            } else if transactional {
                Outcome::failed(
                    partition.index,
                    ErrorCode::TransactionalIdAuthorizationFailed,
                    Some("transactions are not supported yet".into()),
                )
            } else {
                match shard.partition(&plan.name, partition.index) {
                    Err(lookup) => Outcome::failed(partition.index, lookup.error_code(), None),
                    Ok(owned) => {
                        // The topic's setting, or the broker's default.
                        let min_in_sync = if acks == -1 {
                            owned.log.config().min_insync_replicas
                        } else {
                            1
                        };
                        let lag = shard.config.replica_lag_time_max;
                        let in_sync = owned.leader_state().map_or(1, |s| s.in_sync_now(lag));
                        if acks == -1 && in_sync < min_in_sync {
                            // Kafka refuses before appending: nothing is written.
                            Outcome::failed(
                                partition.index,
                                ErrorCode::NotEnoughReplicas,
                                Some(format!(
                                    "{in_sync} in-sync replicas, min.insync.replicas is {min_in_sync}"
                                )),
                            )
                        } else {
                            let mut outcome = append_all(&owned, partition.index, records).await;
                            outcome.min_in_sync = min_in_sync;
                            outcome
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        results.push((plan.name.clone(), plan.topic_id, outcomes));
    }

    if acks == 0 {
        // No answer, but the connection keeps this request's bytes counted against the
        // core's request budget until they are written (see `connection`): that bounds
        // unwritten acks=0 data per core, as waiting for the answers does for acks >= 1.
        let written: Vec<_> = results
            .iter_mut()
            .flat_map(|(_, _, outcomes)| outcomes.iter_mut())
            .filter_map(|outcome| outcome.wait.take())
            .collect();
        return Box::pin(async move {
            for (log, end_offset) in written {
                // A failure here reaches nobody: acks=0 producers learn nothing by design.
                let _ = log.wait_written(end_offset).await;
            }
            Ok(None)
        });
    }
    let shard = shard.clone();
    Box::pin(async move {
        for (_, _, outcomes) in &mut results {
            for outcome in outcomes.iter_mut() {
                let Some((log, end_offset)) = outcome.wait.take() else {
                    continue;
                };
                let replication = outcome.replication.take();
                let min_in_sync = outcome.min_in_sync;
                let wait = async {
                    if acks == -1 {
                        if log.config().write_caching {
                            log.wait_written(end_offset).await?;
                        } else {
                            log.wait_durable(end_offset).await?;
                        }
                        // Every in-sync replica holds it before acks=all is answered.
                        if let Some(replication) = &replication {
                            if !replication.wait_replicated(end_offset, &log).await {
                                return Err(NotEnoughReplicas::NotLeader);
                            }
                            if replication.in_sync_count() < min_in_sync {
                                return Err(NotEnoughReplicas::AfterAppend);
                            }
                        }
                        Ok(())
                    } else {
                        log.wait_written(end_offset).await?;
                        if let Some(replication) = &replication {
                            replication.refresh(&log);
                        }
                        Ok(())
                    }
                };
                let waited = futures_lite::future::or(async { Some(wait.await) }, async {
                    glommio::timer::sleep(timeout).await;
                    None
                })
                .await;
                match waited {
                    Some(Ok(())) => {}
                    Some(Err(NotEnoughReplicas::Storage(error))) => {
                        outcome.error = error.error_code();
                        outcome.message = Some(error.to_string());
                    }
                    Some(Err(NotEnoughReplicas::AfterAppend)) => {
                        outcome.error = ErrorCode::NotEnoughReplicasAfterAppend;
                        outcome.message =
                            Some("fewer in-sync replicas than min.insync.replicas".into());
                    }
                    Some(Err(NotEnoughReplicas::NotLeader)) => {
                        outcome.error = ErrorCode::NotLeaderOrFollower;
                        outcome.message = Some("no longer the partition's leader".into());
                    }
                    None => outcome.error = ErrorCode::RequestTimedOut,
                }
            }
        }
        if shard.fault_drop_produce_response() {
            return Err(format!(
                "{FAULT_INJECTION}: dropping a produce response after its append"
            ));
        }
        let responses = results
            .into_iter()
            .map(|(name, topic_id, outcomes)| {
                let topic = if by_id {
                    TopicProduceResponse::default().with_topic_id(topic_id)
                } else {
                    TopicProduceResponse::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                };
                topic.with_partition_responses(
                    outcomes
                        .into_iter()
                        .map(|outcome| {
                            // log_start_offset from v5, error_message from v8.
                            let version = context.api_version;
                            PartitionProduceResponse::default()
                                .with_index(outcome.index)
                                .with_error_code(outcome.error.code())
                                .with_base_offset(outcome.base_offset)
                                .with_log_append_time_ms(-1)
                                .with_log_start_offset(if version >= 5 {
                                    outcome.log_start_offset
                                } else {
                                    -1
                                })
                                .with_error_message(
                                    outcome
                                        .message
                                        .filter(|_| version >= 8)
                                        .map(StrBytes::from_string),
                                )
                        })
                        .collect(),
                )
            })
            .collect();
        context.respond(ResponseKind::Produce(
            ProduceResponse::default()
                .with_responses(responses)
                .with_throttle_time_ms(throttle_ms),
        ))
    })
}

/// Splits the request buffer into one `BytesMut` per partition (or `None` where a
/// partition had no usable records), in plan order. Without copying when the buffer is no
/// longer shared; otherwise each partition's records are copied once.
fn carve(frame: Bytes, plans: &[TopicPlan]) -> std::vec::IntoIter<Option<BytesMut>> {
    let ranges: Vec<Option<Range<usize>>> = plans
        .iter()
        .flat_map(|plan| plan.partitions.iter().map(|p| p.records.clone()))
        .collect();
    let ascending = ranges
        .iter()
        .flatten()
        .try_fold(0usize, |end, range| {
            (range.start >= end).then_some(range.end)
        })
        .is_some();
    let pieces: Vec<Option<BytesMut>> = match frame.try_into_mut() {
        Ok(mut rest) if ascending => {
            let mut consumed = 0;
            ranges
                .iter()
                .map(|range| {
                    range.as_ref().map(|range| {
                        rest.advance(range.start - consumed);
                        consumed = range.end;
                        rest.split_to(range.len())
                    })
                })
                .collect()
        }
        Ok(frame) => copy_pieces(&frame, &ranges),
        Err(frame) => copy_pieces(&frame, &ranges),
    };
    pieces.into_iter()
}

fn copy_pieces(frame: &[u8], ranges: &[Option<Range<usize>>]) -> Vec<Option<BytesMut>> {
    ranges
        .iter()
        .map(|range| {
            range
                .as_ref()
                .map(|range| BytesMut::from(&frame[range.clone()]))
        })
        .collect()
}

/// Appends every batch in `records` (usually one). A bad batch fails the partition; batches
/// before it stay appended, as their offsets were already assigned.
async fn append_all(owned: &OwnedPartition, index: i32, records: Option<BytesMut>) -> Outcome {
    let log = &owned.log;
    let Some(mut records) = records else {
        return Outcome::failed(
            index,
            ErrorCode::InvalidRecord,
            Some("the partition carries no record batch".into()),
        );
    };
    let mut base_offset = -1;
    let mut end_offset = -1;
    let mut log_start_offset = -1;
    while records.has_remaining() {
        let Ok(size) = next_batch_bytes(&records) else {
            return Outcome::failed(
                index,
                ErrorCode::CorruptMessage,
                Some("records end inside a batch".into()),
            );
        };
        let batch = records.split_to(size);
        // Idempotent producers: a retried batch gets its first copy's offsets.
        let header = RecordBatchHeader::decode(&batch).ok();
        let check = match &header {
            Some(header) if header.is_transactional() => {
                SequenceCheck::Reject(ErrorCode::TransactionalIdAuthorizationFailed)
            }
            Some(header) => owned.producers.borrow_mut().check(header),
            None => SequenceCheck::NotIdempotent,
        };
        let info = match check {
            SequenceCheck::Reject(code) => return Outcome::failed(index, code, None),
            SequenceCheck::Duplicate { base_offset } => {
                let header = header.expect("checked");
                AppendInfo {
                    base_offset,
                    last_offset: base_offset + i64::from(header.last_offset_delta),
                    log_start_offset: log.log_start_offset(),
                }
            }
            SequenceCheck::Append | SequenceCheck::NotIdempotent => {
                let (bytes, records) = (
                    batch.len(),
                    header.as_ref().map_or(0, |h| h.records_count.max(0) as u64),
                );
                match log.append(batch).await {
                    Ok(info) => {
                        owned.traffic.produced(bytes, records);
                        if check == SequenceCheck::Append {
                            let header = header.as_ref().expect("checked");
                            owned
                                .producers
                                .borrow_mut()
                                .complete(header, info.base_offset);
                        }
                        info
                    }
                    Err(error) => {
                        if check == SequenceCheck::Append {
                            let header = header.as_ref().expect("checked");
                            owned.producers.borrow_mut().abandon(header);
                        }
                        return Outcome::failed(index, error.error_code(), Some(error.to_string()));
                    }
                }
            }
        };
        if base_offset < 0 {
            base_offset = info.base_offset;
        }
        end_offset = end_offset.max(info.last_offset + 1);
        log_start_offset = info.log_start_offset;
    }
    Outcome {
        index,
        error: ErrorCode::None,
        message: None,
        base_offset,
        log_start_offset,
        wait: Some((log.clone(), end_offset)),
        replication: owned.leader_state().cloned(),
        min_in_sync: 1,
    }
}

served!(Produce, 3..=13, |shard, call, body| {
    // A client past its producer_byte_rate is answered with a throttle time and not read
    // from until it has passed; the request itself is served.
    let throttle_ms = call.quota.map_or(0, |quota| quota.charge(call.frame.len()));
    produce(shard, call.context, body, call.frame, throttle_ms).await
});
