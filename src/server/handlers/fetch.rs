//! Fetch: serves whole stored batches from the logs this core owns (the log's own buffers,
//! written to the socket without a copy; see `protocol::fetch_response`), up to the request's
//! `max_bytes` and each partition's `partition_max_bytes` (the first batch always, so a
//! consumer makes progress past a large batch, as Kafka does). When fewer than `min_bytes`
//! are ready it long-polls: it sleeps until enough new bytes became visible in one of its
//! partitions that the answer could now reach `min_bytes` (with the shortfall spread over
//! its n partitions, one of them must have grown by a 1/n share of it), or `max_wait_ms`
//! passes. So a parked fetch with a large `min_bytes` is not woken, to read and park
//! again, by every small append.
//!
//! A fetch from a follower broker (a replica id) is served by `replica_fetch`.
//!
//! Only read_uncommitted exists so far (no transactions): the last stable offset equals the
//! high watermark. Fetch sessions (KIP-227) are not kept: every answer carries session id 0,
//! which tells a client to send full fetch requests.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;
use uuid::Uuid;

use super::{RequestContext, Response};
use crate::server::error_codes::ToErrorCode;
use crate::shard::metrics::PartitionTraffic;
use crate::shard::quotas::QuotaCharge;
use crate::shard::{Log, Shard};
use crate::storage::StorageError;
use spindle_protocol::ErrorCode;
use spindle_protocol::fetch_response::{FetchedPartition, FetchedTopic, encode_fetch_response};

/// Longest long-poll honoured, whatever the client asks.
const FETCH_WAIT_MS_MAX: i32 = 30_000;

struct Wanted {
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    /// The partition's log and its traffic counters.
    log: Result<(Log, Rc<PartitionTraffic>), ErrorCode>,
}

struct WantedTopic {
    name: String,
    topic_id: Uuid,
    partitions: Vec<Wanted>,
}

pub async fn fetch(
    shard: Rc<Shard>,
    context: RequestContext,
    request: FetchRequest,
    quota: Option<QuotaCharge>,
) -> Response {
    let version = context.api_version;
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    if replica_id >= 0 {
        return super::replica_fetch::replica_fetch(shard, context, request, replica_id as u32)
            .await;
    }
    if version >= 7 && request.session_id != 0 && request.session_epoch > 0 {
        // An incremental fetch for a session we never created.
        count_fetch_errors(ErrorCode::FetchSessionIdNotFound.code(), &[]);
        return Ok(Some(encode_fetch_response(
            version,
            context.correlation_id,
            0,
            ErrorCode::FetchSessionIdNotFound.code(),
            &[],
        )));
    }
    let by_id = version >= 13;
    let snapshot = shard.snapshot();
    let topics: Vec<WantedTopic> = request
        .topics
        .into_iter()
        .map(|topic| {
            let metadata = if by_id {
                snapshot.topic_by_id(&topic.topic_id)
            } else {
                snapshot.topic(topic.topic.as_str())
            };
            let missing = if by_id {
                ErrorCode::UnknownTopicId
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            let partitions = topic
                .partitions
                .iter()
                .map(|partition| Wanted {
                    partition: partition.partition,
                    fetch_offset: partition.fetch_offset,
                    partition_max_bytes: partition.partition_max_bytes.max(0) as usize,
                    log: match metadata {
                        None => Err(missing),
                        Some(metadata) => shard
                            .partition_in_epoch(
                                &metadata.name,
                                partition.partition,
                                partition.current_leader_epoch,
                            )
                            .map(|owned| (owned.log, owned.traffic))
                            .map_err(|lookup| lookup.error_code()),
                    },
                })
                .collect();
            WantedTopic {
                name: topic.topic.as_str().to_string(),
                topic_id: topic.topic_id,
                partitions,
            }
        })
        .collect();
    drop(snapshot);

    let wait_ms = request.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64;
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let max_bytes = request.max_bytes.max(0) as usize;
    let min_bytes = request.min_bytes.max(0) as usize;
    loop {
        // Taken before reading, so bytes that arrive during the read count as new.
        let visible_before = visible_bytes(&topics);
        let (fetched, total_bytes, any_error) = read_all(&shard, &topics, max_bytes).await;
        let now = Instant::now();
        if total_bytes >= min_bytes.max(1)
            || any_error
            || now >= deadline
            || shard.is_shutting_down()
        {
            count_fetch_errors(0, &fetched);
            // A client past its consumer_byte_rate gets its data with a throttle time,
            // and its next request is not read before that.
            let throttle_ms = quota.as_ref().map_or(0, |quota| quota.charge(total_bytes));
            return Ok(Some(encode_fetch_response(
                version,
                context.correlation_id,
                throttle_ms,
                ErrorCode::None.code(),
                &fetched,
            )));
        }
        // Parked fetches are bounded per core: past the bound, answer now with what there is
        // and ask the client (throttle_time_ms, KIP-219) to wait out the rest itself.
        let Some(_parked) = ParkedFetch::take(&shard) else {
            let parked_ms = deadline.saturating_duration_since(now).as_millis() as i32;
            let quota_ms = quota.as_ref().map_or(0, |quota| quota.charge(total_bytes));
            let throttle_ms = parked_ms.max(quota_ms);
            count_fetch_errors(0, &fetched);
            return Ok(Some(encode_fetch_response(
                version,
                context.correlation_id,
                throttle_ms,
                ErrorCode::None.code(),
                &fetched,
            )));
        };
        drop(fetched);
        let shortfall = min_bytes.max(1) - total_bytes;
        wait_for_data(&shard, &topics, &visible_before, shortfall, deadline).await;
    }
}

/// A place among the core's parked fetches (`--max-parked-fetches-per-core`), given back on
/// drop.
struct ParkedFetch<'a>(&'a Shard);

impl<'a> ParkedFetch<'a> {
    fn take(shard: &'a Shard) -> Option<ParkedFetch<'a>> {
        let parked = shard.parked_fetches.get();
        if parked >= shard.config.parked_fetches_per_core_max {
            return None;
        }
        shard.parked_fetches.set(parked + 1);
        Some(ParkedFetch(shard))
    }
}

impl Drop for ParkedFetch<'_> {
    fn drop(&mut self) {
        self.0.parked_fetches.set(self.0.parked_fetches.get() - 1);
    }
}

/// One pass over every wanted partition: `(answers, record bytes, any partition error)`.
async fn read_all(
    shard: &Shard,
    topics: &[WantedTopic],
    max_bytes: usize,
) -> (Vec<FetchedTopic>, usize, bool) {
    let mut total_bytes = 0usize;
    let mut any_error = false;
    let mut fetched = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut data = FetchedPartition::empty(wanted.partition);
            match &wanted.log {
                Err(code) => {
                    any_error = true;
                    data.error_code = code.code();
                }
                Ok((log, traffic)) => {
                    data.high_watermark = log.high_watermark();
                    data.last_stable_offset = data.high_watermark;
                    data.log_start_offset = log.log_start_offset();
                    let budget = wanted
                        .partition_max_bytes
                        .min(max_bytes.saturating_sub(total_bytes));
                    // Past the response budget only the first partition with data gets
                    // its one oversized batch.
                    if budget > 0 || total_bytes == 0 {
                        match log.read(wanted.fetch_offset, budget.max(1)).await {
                            Ok(batches) => {
                                let bytes = batches.iter().map(Bytes::len).sum::<usize>();
                                traffic.fetched(bytes);
                                total_bytes += bytes;
                                data.records = Some(batches);
                            }
                            Err(error) => {
                                any_error = true;
                                data.error_code = error.error_code().code();
                                if !matches!(error, StorageError::OffsetOutOfRange { .. }) {
                                    shard.fetch_errors.set(shard.fetch_errors.get() + 1);
                                    if let Some(left_out) =
                                        shard.fetch_error_log.admit(Instant::now())
                                    {
                                        tracing::warn!(
                                            left_out,
                                            "fetch {}-{} at {}: {error}",
                                            topic.name,
                                            wanted.partition,
                                            wanted.fetch_offset
                                        );
                                    }
                                }
                            }
                        }
                    } else {
                        data.records = Some(Vec::new());
                    }
                }
            }
            partitions.push(data);
        }
        fetched.push(FetchedTopic {
            name: topic.name.clone(),
            topic_id: topic.topic_id,
            partitions,
        });
    }
    (fetched, total_bytes, any_error)
}

/// Each wanted partition's visible-bytes counter (`None` where its log is not served).
fn visible_bytes(topics: &[WantedTopic]) -> Vec<Option<i64>> {
    topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|wanted| wanted.log.as_ref().ok().map(|(log, _)| log.visible_bytes()))
        .collect()
}

/// Sleeps until some wanted partition has `shortfall / n` more visible bytes than it had in
/// `visible_before` (n: the partitions served here), `deadline`, or shutdown.
async fn wait_for_data(
    shard: &Shard,
    topics: &[WantedTopic],
    visible_before: &[Option<i64>],
    shortfall: usize,
    deadline: Instant,
) {
    let served = visible_before.iter().flatten().count().max(1);
    let share = shortfall.div_ceil(served).max(1) as i64;
    let mut waits: Vec<Pin<Box<dyn Future<Output = bool> + '_>>> = topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .zip(visible_before)
        .filter_map(|(wanted, before)| {
            let (log, _) = wanted.log.as_ref().ok()?;
            Some(Box::pin(log.wait_visible_bytes((*before)? + share)) as Pin<Box<_>>)
        })
        .collect();
    wait_for_any(shard, &mut waits, deadline).await
}

/// Sleeps until one of `waits` resolves, `deadline`, or shutdown (a long-poll's wait,
/// shared with the follower fetch in `replica_fetch`).
pub(super) async fn wait_for_any(
    shard: &Shard,
    waits: &mut [Pin<Box<dyn Future<Output = bool> + '_>>],
    deadline: Instant,
) {
    let mut timer = Box::pin(futures_lite::future::or(
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())),
        shard.shutdown_started(),
    ));
    std::future::poll_fn(|cx| {
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}

served!(Fetch, 4..=18, |shard, call, body| {
    Box::pin(fetch(shard.clone(), call.context, body, call.quota))
});

/// Counts a consumer fetch's errors for the metrics (its answer is encoded here, zero-copy,
/// not through `RequestContext::respond`, which counts the other APIs').
fn count_fetch_errors(top_level: i16, fetched: &[FetchedTopic]) {
    crate::shard::metrics::count_errors(kafka_protocol::messages::ApiKey::Fetch as i16, |visit| {
        if top_level != 0 {
            visit(top_level);
        }
        for partition in fetched.iter().flat_map(|topic| &topic.partitions) {
            if partition.error_code != 0 {
                visit(partition.error_code);
            }
        }
    });
}
