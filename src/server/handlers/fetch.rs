//! Fetch: serves whole stored batches from the logs this core owns, up to the request's
//! `max_bytes` and each partition's `partition_max_bytes` (the first batch always, so a
//! consumer makes progress past a large batch, as Kafka does). When fewer than `min_bytes`
//! are ready it long-polls: it sleeps until an append makes any of its partitions' high
//! watermark move, or `max_wait_ms` passes.
//!
//! Only read_uncommitted exists so far (no transactions): the last stable offset equals the
//! high watermark. Fetch sessions (KIP-227) are not kept: every answer carries session id 0,
//! which tells a client to send full fetch requests.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ResponseKind, TopicName};
use uuid::Uuid;

use super::{RequestContext, Response};
use crate::protocol::ErrorCode;
use crate::server::shard::{Log, Shard};
use crate::storage::StorageError;

/// Longest long-poll honoured, whatever the client asks.
const FETCH_WAIT_MS_MAX: i32 = 30_000;

struct Wanted {
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    log: Result<Log, ErrorCode>,
}

struct WantedTopic {
    name: TopicName,
    topic_id: Uuid,
    partitions: Vec<Wanted>,
}

pub async fn fetch(shard: Rc<Shard>, context: RequestContext, request: FetchRequest) -> Response {
    if context.api_version >= 7 && request.session_id != 0 && request.session_epoch > 0 {
        // An incremental fetch for a session we never created.
        return context.respond(ResponseKind::Fetch(
            FetchResponse::default()
                .with_error_code(ErrorCode::FetchSessionIdNotFound.code())
                .with_session_id(0),
        ));
    }
    let by_id = context.api_version >= 13;
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
                            .log(&metadata.name, partition.partition)
                            .map_err(|lookup| ErrorCode::from(&lookup)),
                    },
                })
                .collect();
            WantedTopic {
                name: topic.topic,
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
        let (responses, total_bytes, any_error) =
            read_all(&topics, max_bytes, context.api_version).await;
        let now = Instant::now();
        if total_bytes >= min_bytes.max(1)
            || any_error
            || now >= deadline
            || shard.is_shutting_down()
        {
            return context.respond(ResponseKind::Fetch(
                FetchResponse::default()
                    .with_session_id(0)
                    .with_responses(responses),
            ));
        }
        drop(responses);
        wait_for_data(&shard, &topics, deadline).await;
    }
}

/// One pass over every wanted partition: `(responses, record bytes, any partition error)`.
async fn read_all(
    topics: &[WantedTopic],
    max_bytes: usize,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    // log_start_offset exists from v5; topics are named up to v12 and identified from v13.
    let log_start_offset = |offset: i64| if version >= 5 { offset } else { -1 };
    let mut total_bytes = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_preferred_read_replica(BrokerId(-1));
            match &wanted.log {
                Err(code) => {
                    any_error = true;
                    data = data
                        .with_error_code(code.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1);
                }
                Ok(log) => {
                    let high_watermark = log.high_watermark();
                    data = data
                        .with_high_watermark(high_watermark)
                        .with_last_stable_offset(high_watermark)
                        .with_log_start_offset(log_start_offset(log.log_start_offset()));
                    let budget = wanted
                        .partition_max_bytes
                        .min(max_bytes.saturating_sub(total_bytes));
                    // Past the response budget only the first partition with data gets
                    // its one oversized batch.
                    if budget > 0 || total_bytes == 0 {
                        match log.read(wanted.fetch_offset, budget.max(1)).await {
                            Ok(batches) => {
                                let records = concat(batches);
                                total_bytes += records.len();
                                data = data.with_records(Some(records));
                            }
                            Err(error) => {
                                any_error = true;
                                data = data.with_error_code(ErrorCode::from(&error).code());
                                if !matches!(error, StorageError::OffsetOutOfRange { .. }) {
                                    tracing::warn!(
                                        "fetch {}-{} at {}: {error}",
                                        topic.name.as_str(),
                                        wanted.partition,
                                        wanted.fetch_offset
                                    );
                                }
                            }
                        }
                    } else {
                        data = data.with_records(Some(Bytes::new()));
                    }
                }
            }
            partitions.push(data);
        }
        let response = FetchableTopicResponse::default().with_partitions(partitions);
        responses.push(if version >= 13 {
            response.with_topic_id(topic.topic_id)
        } else {
            response.with_topic(topic.name.clone())
        });
    }
    (responses, total_bytes, any_error)
}

/// The batches of one partition as one buffer: the stored bytes themselves when there is
/// one batch, one copy when there are several.
fn concat(batches: Vec<Bytes>) -> Bytes {
    match batches.len() {
        0 => Bytes::new(),
        1 => batches.into_iter().next().expect("one batch"),
        _ => {
            let total = batches.iter().map(Bytes::len).sum();
            let mut out = BytesMut::with_capacity(total);
            for batch in &batches {
                out.extend_from_slice(batch);
            }
            out.freeze()
        }
    }
}

/// Sleeps until any wanted partition's high watermark moves, `deadline`, or shutdown.
async fn wait_for_data(shard: &Shard, topics: &[WantedTopic], deadline: Instant) {
    let mut waits: Vec<Pin<Box<dyn Future<Output = bool> + '_>>> = topics
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .filter_map(|wanted| {
            let log = wanted.log.as_ref().ok()?;
            // Whatever is visible now was already read (or did not reach min_bytes): wake
            // when more becomes visible.
            Some(Box::pin(log.wait_high_watermark_above(log.high_watermark())) as Pin<Box<_>>)
        })
        .collect();
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
