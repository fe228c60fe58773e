//! Fetch from a follower (issue 13): a broker holding a replica of partitions this core
//! leads copies their logs, past the high watermark that holds consumers back. Its fetch
//! offset is its log end, so each fetch also tells the leader how far that follower got,
//! which moves the high watermark (and answers acks=all producers). Long-polls until some
//! partition has data the follower lacks. Runs on the leader's core.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;

use super::{RequestContext, Response};
use crate::server::error_codes::ToErrorCode;
use crate::shard::{OwnedPartition, Shard, check_leader_epoch};
use spindle_protocol::ErrorCode;
use spindle_protocol::fetch_response::{FetchedPartition, FetchedTopic, encode_fetch_response};

/// Longest long-poll honoured for a follower.
const REPLICA_WAIT_MS_MAX: i32 = 10_000;

struct Wanted {
    partition: i32,
    fetch_offset: i64,
    /// The follower's log start (-1: not reported).
    log_start_offset: i64,
    partition_max_bytes: usize,
    replica: Result<OwnedPartition, ErrorCode>,
    /// Where the follower's log stops agreeing with this one, if it does (KIP-320's check
    /// of its last fetched epoch): it cuts back there before fetching again.
    diverging_epoch: Option<(i32, i64)>,
}

pub async fn replica_fetch(
    shard: Rc<Shard>,
    context: RequestContext,
    request: FetchRequest,
    follower: u32,
) -> Response {
    let version = context.api_version;
    let snapshot = shard.snapshot();
    let topics: Vec<(String, uuid::Uuid, Vec<Wanted>)> = request
        .topics
        .iter()
        .map(|topic| {
            let name = if version >= 13 {
                snapshot
                    .topic_by_id(&topic.topic_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            } else {
                topic.topic.as_str().to_string()
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| {
                    let replica = shard
                        .replica(&name, partition.partition)
                        .filter(|owned| {
                            owned
                                .leader_state()
                                .is_some_and(|state| state.is_follower(follower))
                        })
                        .ok_or(ErrorCode::NotLeaderOrFollower)
                        .and_then(|owned| in_epoch(owned, partition.current_leader_epoch));
                    let diverging_epoch = replica.as_ref().ok().and_then(|owned| {
                        diverging_epoch(
                            &owned.log,
                            partition.last_fetched_epoch,
                            partition.fetch_offset,
                        )
                    });
                    Wanted {
                        partition: partition.partition,
                        fetch_offset: partition.fetch_offset,
                        log_start_offset: partition.log_start_offset,
                        partition_max_bytes: partition.partition_max_bytes.max(0) as usize,
                        replica,
                        diverging_epoch,
                    }
                })
                .collect();
            (name, topic.topic_id, partitions)
        })
        .collect();
    drop(snapshot);
    // What the follower holds moves the high watermark before anything is read; a log
    // that diverged holds nothing past the point of divergence that counts.
    for wanted in topics.iter().flat_map(|(_, _, partitions)| partitions) {
        if let (Ok(owned), None) = (&wanted.replica, wanted.diverging_epoch) {
            let state = owned.leader_state().expect("checked above");
            state.follower_fetched(
                follower,
                wanted.fetch_offset,
                wanted.log_start_offset,
                &owned.log,
            );
        }
    }
    let wait_ms = request.max_wait_ms.clamp(0, REPLICA_WAIT_MS_MAX) as u64;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let max_bytes = request.max_bytes.max(0) as usize;
    loop {
        let mut total_bytes = 0usize;
        let mut any_error = false;
        let mut fetched = Vec::with_capacity(topics.len());
        for (name, topic_id, partitions) in &topics {
            let mut answers = Vec::with_capacity(partitions.len());
            for wanted in partitions {
                let mut data = FetchedPartition::empty(wanted.partition);
                match &wanted.replica {
                    Err(code) => {
                        any_error = true;
                        data.error_code = code.code();
                    }
                    Ok(_) if wanted.diverging_epoch.is_some() => {
                        any_error = true;
                        data.diverging_epoch = wanted.diverging_epoch;
                    }
                    Ok(owned) => {
                        let state = owned.leader_state().expect("checked above");
                        data.high_watermark = state.high_watermark();
                        data.last_stable_offset = data.high_watermark;
                        data.log_start_offset = owned.log.log_start_offset();
                        let budget = wanted
                            .partition_max_bytes
                            .min(max_bytes.saturating_sub(total_bytes));
                        if budget > 0 || total_bytes == 0 {
                            match owned
                                .log
                                // A follower holding nothing of what this log still
                                // keeps (a new replica, a wiped disk) copies from the log
                                // start: its log takes the gap below it.
                                .read_replica(
                                    wanted.fetch_offset.max(owned.log.log_start_offset()),
                                    budget.max(1),
                                )
                                .await
                            {
                                Ok(batches) => {
                                    total_bytes += batches.iter().map(Bytes::len).sum::<usize>();
                                    data.records = Some(batches);
                                }
                                Err(error) => {
                                    any_error = true;
                                    data.error_code = error.error_code().code();
                                }
                            }
                        }
                    }
                }
                answers.push(data);
            }
            fetched.push(FetchedTopic {
                name: name.clone(),
                topic_id: *topic_id,
                partitions: answers,
            });
        }
        if total_bytes > 0 || any_error || Instant::now() >= deadline || shard.is_shutting_down() {
            return Ok(Some(encode_fetch_response(
                version,
                context.correlation_id,
                0,
                ErrorCode::None.code(),
                &fetched,
            )));
        }
        drop(fetched);
        wait_for_new_data(&shard, &topics, deadline).await;
    }
}

/// A follower's fetch naming `current_leader_epoch` is served only by the leader of that
/// epoch: a newer one means this leader was replaced and has not heard yet.
fn in_epoch(owned: OwnedPartition, current_leader_epoch: i32) -> Result<OwnedPartition, ErrorCode> {
    let epoch = owned.leader_state().expect("a leader's replica").epoch;
    check_leader_epoch(current_leader_epoch, epoch)
        .map(|()| owned)
        .map_err(|lookup| lookup.error_code())
}

/// Whether a follower that last fetched a batch of `last_fetched_epoch` and now asks from
/// `fetch_offset` holds something this log does not (Kafka's check on a replica fetch): its
/// epoch is unknown here or ends before `fetch_offset`. Then `(epoch, end offset)` as
/// OffsetForLeaderEpoch would answer. No epoch given (v11 and older): nothing to check.
fn diverging_epoch(
    log: &crate::shard::Log,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (mut epoch, mut end_offset) = log.end_offset_for_leader_epoch(last_fetched_epoch);
    if epoch < 0 {
        // Newer than any epoch here: what the follower holds from it is unknown here, so it
        // keeps what agrees with this log's newest epoch (an undefined answer would be read
        // as no answer).
        (epoch, end_offset) = log.end_offset_for_leader_epoch(log.latest_leader_epoch()?);
    }
    (epoch < last_fetched_epoch || end_offset < fetch_offset).then_some((epoch, end_offset))
}

/// Sleeps until some wanted partition's log holds an offset at or past the follower's
/// fetch offset, the deadline, or shutdown.
async fn wait_for_new_data(
    shard: &Shard,
    topics: &[(String, uuid::Uuid, Vec<Wanted>)],
    deadline: Instant,
) {
    use std::future::Future;
    use std::pin::Pin;
    let mut waits: Vec<Pin<Box<dyn Future<Output = bool> + '_>>> = topics
        .iter()
        .flat_map(|(_, _, partitions)| partitions)
        .filter_map(|wanted| {
            let owned = wanted.replica.as_ref().ok()?;
            Some(
                Box::pin(owned.log.wait_local_high_watermark(wanted.fetch_offset + 1))
                    as Pin<Box<_>>,
            )
        })
        .collect();
    super::fetch::wait_for_any(shard, &mut waits, deadline).await
}
