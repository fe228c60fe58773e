//! The follower side of replication (issue 13): for every broker whose partitions this core
//! follows, one task fetches them as a replica (Kafka's Fetch with this broker's id as
//! `replica_id`), from this replica's log end, and appends what comes back at the leader's
//! offsets. The fetch offset tells the leader how far this replica got; the answer's high
//! watermark caps what this replica's readers may see. Runs on the follower's core, over
//! one glommio TCP connection per leader.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::shard::log_limit::LogLimit;
use crate::shard::tasks::TaskKind;
use crate::shard::{FollowedPartition, Shard};
use spindle_protocol::record_batch::next_batch_bytes;

/// The Fetch version a follower speaks (topics by name, `replica_id` in the body).
const REPLICA_FETCH_VERSION: i16 = 12;
/// How long the leader may hold a fetch with nothing new.
const REPLICA_FETCH_WAIT_MS: i32 = 500;
/// Bytes asked per fetch, and per partition.
const REPLICA_FETCH_BYTES_MAX: i32 = 16 << 20;
const REPLICA_PARTITION_BYTES_MAX: i32 = 4 << 20;
/// A response larger than this closes the connection unread (the leader answers within
/// the request's max_bytes, plus framing).
const RESPONSE_BYTES_MAX: usize = REPLICA_FETCH_BYTES_MAX as usize + (1 << 20);
/// How long a fetch may take, long-poll included, before the connection is dropped.
const REPLICA_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed connection or fetch, and between checks for new leaders.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// Keeps one fetching task per leader this core follows; ends at shutdown.
pub async fn run_replica_fetchers(shard: Rc<Shard>) {
    let running: Rc<RefCell<HashSet<u32>>> = Rc::default();
    loop {
        let leaders: HashSet<u32> = shard
            .followed_partitions()
            .into_iter()
            .map(|followed| followed.leader)
            .collect();
        for leader in leaders {
            if running.borrow_mut().insert(leader) {
                let (shard, running) = (shard.clone(), running.clone());
                let started = shard.clone().tasks.spawn_tracked(
                    TaskKind::Requests,
                    "replica-fetcher",
                    async move {
                        follow_leader(&shard, leader).await;
                        running.borrow_mut().remove(&leader);
                    },
                );
                if !started {
                    return;
                }
            }
        }
        if !super::sleep_unless_shutdown(&shard, RETRY_DELAY * 2).await {
            return;
        }
    }
}

/// Fetches from `leader` while this core follows any of its partitions.
async fn follow_leader(shard: &Shard, leader: u32) {
    let mut connection: Option<TcpStream> = None;
    let mut correlation_id = 0i32;
    let errors = LogLimit::new(Duration::from_secs(10));
    while !shard.is_shutting_down() {
        let followed: Vec<FollowedPartition> = shard
            .followed_partitions()
            .into_iter()
            .filter(|partition| partition.leader == leader)
            .collect();
        if followed.is_empty() {
            return;
        }
        let snapshot = shard.snapshot();
        let local = snapshot.local_broker(shard.core);
        let endpoint = snapshot.endpoint(leader);
        drop(snapshot);
        if connection.is_none() {
            let Some((host, port)) = endpoint else {
                pause(shard).await;
                continue;
            };
            match TcpStream::connect(format!("{host}:{port}")).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    connection = Some(stream);
                }
                Err(e) => {
                    if let Some(left_out) = errors.admit(Instant::now()) {
                        tracing::warn!(leader, left_out, "connecting to the leader: {e}");
                    }
                    pause(shard).await;
                    continue;
                }
            }
        }
        correlation_id = correlation_id.wrapping_add(1);
        let stream = connection.as_mut().expect("connected above");
        let exchange = fetch_once(stream, correlation_id, local, &followed);
        let outcome = futures_lite::future::or(exchange, async {
            futures_lite::future::or(
                glommio::timer::sleep(REPLICA_FETCH_TIMEOUT),
                shard.shutdown_started(),
            )
            .await;
            Err("no answer in time (or shutting down)".to_string())
        })
        .await;
        match outcome {
            Ok(response) => {
                if let Err(e) = apply_response(shard, &followed, response).await
                    && let Some(left_out) = errors.admit(Instant::now())
                {
                    tracing::warn!(leader, left_out, "replicating from the leader: {e}");
                    pause(shard).await;
                }
            }
            Err(e) => {
                if let Some(left_out) = errors.admit(Instant::now()) {
                    tracing::warn!(leader, left_out, "fetching from the leader: {e}");
                }
                connection = None;
                pause(shard).await;
            }
        }
    }
}

async fn pause(shard: &Shard) {
    super::sleep_unless_shutdown(shard, RETRY_DELAY).await;
}

/// Sends one replica fetch for `followed` (each from its log end) and reads the answer.
async fn fetch_once(
    stream: &mut TcpStream,
    correlation_id: i32,
    local: u32,
    followed: &[FollowedPartition],
) -> Result<FetchResponse, String> {
    let mut by_topic: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for partition in followed {
        by_topic.entry(&partition.topic).or_default().push(
            FetchPartition::default()
                .with_partition(partition.partition)
                .with_current_leader_epoch(partition.epoch)
                .with_fetch_offset(partition.log.log_end_offset())
                .with_last_fetched_epoch(partition.log.latest_leader_epoch().unwrap_or(-1))
                .with_log_start_offset(partition.log.log_start_offset())
                .with_partition_max_bytes(REPLICA_PARTITION_BYTES_MAX),
        );
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(local as i32))
        .with_max_wait_ms(REPLICA_FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(REPLICA_FETCH_BYTES_MAX)
        .with_session_epoch(-1)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0; 4]);
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(REPLICA_FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("spindle-replica")))
        .encode(
            &mut frame,
            ApiKey::Fetch.request_header_version(REPLICA_FETCH_VERSION),
        )
        .map_err(|e| e.to_string())?;
    request
        .encode(&mut frame, REPLICA_FETCH_VERSION)
        .map_err(|e| e.to_string())?;
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;

    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .await
        .map_err(|e| e.to_string())?;
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= RESPONSE_BYTES_MAX)
        .ok_or_else(|| format!("a {size}-byte fetch response"))?;
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| e.to_string())?;
    let mut body = bytes::Bytes::from(body);
    let header = ResponseHeader::decode(
        &mut body,
        ApiKey::Fetch.response_header_version(REPLICA_FETCH_VERSION),
    )
    .map_err(|e| e.to_string())?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "answer {} to request {correlation_id}",
            header.correlation_id
        ));
    }
    let response =
        FetchResponse::decode(&mut body, REPLICA_FETCH_VERSION).map_err(|e| e.to_string())?;
    if response.error_code != 0 {
        return Err(format!("fetch refused with error {}", response.error_code));
    }
    Ok(response)
}

/// Cuts a followed log back to where it agrees with the leader's, from the leader's answer
/// that `leader_epoch` ends at `leader_end_offset` there (Kafka's truncation by leader
/// epoch, KIP-101/279): up to the end of that epoch in both logs. The next fetch carries
/// the log's new last epoch, and the leader checks again, until they agree.
async fn cut_diverged_tail(
    partition: &FollowedPartition,
    leader_epoch: i32,
    leader_end_offset: i64,
) -> Result<(), String> {
    let log = &partition.log;
    let (own_epoch, own_end_offset) = log.end_offset_for_leader_epoch(leader_epoch);
    let agreed_end = if own_epoch < 0 {
        log.log_end_offset()
    } else {
        own_end_offset
    };
    let cut = leader_end_offset.min(agreed_end).max(0);
    tracing::info!(
        "{}-{}: log diverged from the leader's after epoch {leader_epoch}; cutting {} back to {cut}",
        partition.topic,
        partition.partition,
        log.log_end_offset()
    );
    // A producer-state snapshot may describe batches the cut removes.
    let _ = std::fs::remove_file(log.dir().join(crate::shard::PRODUCER_SNAPSHOT_FILE_NAME));
    log.truncate_to(cut)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Appends each partition's batches at the leader's offsets and takes its high watermark,
/// for the partitions this replica still follows from that leader in the epoch the fetch
/// was sent in. A long-poll can outlive a role change (the leader paused, fenced and
/// replaced, then resuming): its answer tells of an old epoch, and neither its batches
/// nor its high watermark may touch a log that now leads or follows someone else (Kafka's
/// fetcher drops a partition's data when its fetch state changed meanwhile).
async fn apply_response(
    shard: &Shard,
    followed: &[FollowedPartition],
    response: FetchResponse,
) -> Result<(), String> {
    let mut first_error = None;
    for topic in response.responses {
        for data in topic.partitions {
            let Some(partition) = followed
                .iter()
                .find(|p| p.topic == topic.topic.as_str() && p.partition == data.partition_index)
            else {
                continue;
            };
            if !shard.still_follows(partition) {
                continue;
            }
            if data.diverging_epoch.epoch >= 0 {
                let (epoch, end_offset) =
                    (data.diverging_epoch.epoch, data.diverging_epoch.end_offset);
                if let Err(e) = cut_diverged_tail(partition, epoch, end_offset).await {
                    first_error
                        .get_or_insert(format!("{}-{}: {e}", partition.topic, partition.partition));
                }
                continue;
            }
            if data.error_code != 0 {
                first_error.get_or_insert(format!(
                    "{}-{}: error {}",
                    partition.topic, partition.partition, data.error_code
                ));
                continue;
            }
            let mut records = data.records.unwrap_or_default();
            // Whole batches only: the leader may cut the last one at the byte limit.
            while let Ok(size) = next_batch_bytes(&records) {
                let batch = BytesMut::from(&records[..size]);
                records.advance(size);
                // Each append may wait, and a snapshot may change the role meanwhile.
                if !shard.still_follows(partition) {
                    break;
                }
                if let Err(e) = partition.log.append_replicated(batch).await {
                    first_error
                        .get_or_insert(format!("{}-{}: {e}", partition.topic, partition.partition));
                    break;
                }
            }
            if data.high_watermark >= 0 && shard.still_follows(partition) {
                partition
                    .log
                    .set_replication_high_watermark(Some(data.high_watermark));
                // The leader's log start (DeleteRecords, retention) holds here too, as far
                // as this replica holds the log, before its next fetch: a replica that
                // joins the in-sync set (and may lead next) starts where the leader does.
                // Below the leader's high watermark, so it waits only for its own write.
                let start = data
                    .log_start_offset
                    .min(data.high_watermark)
                    .min(partition.log.log_end_offset());
                if start > partition.log.log_start_offset()
                    && partition.log.wait_local_high_watermark(start).await
                    && shard.still_follows(partition)
                    && let Err(e) = partition.log.delete_records_before(start).await
                {
                    first_error.get_or_insert(format!(
                        "{}-{}: raising the log start to {start}: {e}",
                        partition.topic, partition.partition
                    ));
                }
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(error) => Err(error),
    }
}
