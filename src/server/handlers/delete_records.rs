//! DeleteRecords: each partition's log start offset raised on its leader (this core), and
//! persisted; the followers raise theirs from the leader's fetch answers and report them in
//! their next fetch. Answered with the low watermark (the lowest log start over the
//! replicas on live nodes) once it reaches the new start, as Kafka answers, or with
//! REQUEST_TIMED_OUT at the request's timeout. `__consumer_offsets` is the coordinators'
//! own: INVALID_TOPIC_EXCEPTION, as a produce to it gets.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::{RequestContext, Response};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::server::error_codes::ToErrorCode;
use crate::shard::{OwnedPartition, Shard};
use spindle_protocol::ErrorCode;

pub async fn delete_records(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DeleteRecordsRequest,
) -> Response {
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            let answer = DeleteRecordsPartitionResult::default()
                .with_partition_index(partition.partition_index)
                .with_low_watermark(-1);
            let answer = if topic.name.as_str() == OFFSETS_TOPIC {
                answer.with_error_code(ErrorCode::InvalidTopicException.code())
            } else {
                match shard.partition_in_epoch(topic.name.as_str(), partition.partition_index, -1) {
                    Err(lookup) => answer.with_error_code(lookup.error_code().code()),
                    Ok(owned) => match owned.log.delete_records_before(partition.offset).await {
                        Ok(start) => {
                            let (code, low_watermark) =
                                replicas_reach(&shard, &owned, start, deadline).await;
                            answer
                                .with_error_code(code.code())
                                .with_low_watermark(low_watermark)
                        }
                        Err(error) => answer.with_error_code(error.error_code().code()),
                    },
                }
            };
            partitions.push(answer);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    context.respond(ResponseKind::DeleteRecords(
        DeleteRecordsResponse::default().with_topics(topics),
    ))
}

/// Waits until every replica on a live node has raised its log start to `start` (Kafka's
/// low watermark; followers raise theirs from the leader's fetch answers and report it in
/// their next fetch), or until `deadline`: REQUEST_TIMED_OUT then, as Kafka's delayed
/// DeleteRecords answers. The low watermark reached either way.
async fn replicas_reach(
    shard: &Shard,
    owned: &OwnedPartition,
    start: i64,
    deadline: Instant,
) -> (ErrorCode, i64) {
    let Some(state) = owned.leader_state() else {
        return (ErrorCode::None, start);
    };
    loop {
        let reported = state.log_start_reported();
        let snapshot = shard.snapshot();
        let low_watermark = state.low_watermark(&owned.log, |broker| snapshot.is_live(broker));
        drop(snapshot);
        if low_watermark >= start {
            return (ErrorCode::None, low_watermark);
        }
        let now = Instant::now();
        if now >= deadline || shard.is_shutting_down() {
            return (ErrorCode::RequestTimedOut, low_watermark);
        }
        // A node fenced meanwhile stops counting at the next check.
        let recheck = (deadline - now).min(LIVENESS_RECHECK);
        future::or(reported, async {
            glommio::timer::sleep(recheck).await;
        })
        .await;
    }
}

/// How often a waiting DeleteRecords looks again without a follower's report (a node
/// fenced meanwhile no longer counts).
const LIVENESS_RECHECK: Duration = Duration::from_millis(500);

served!(DeleteRecords, 0..=2, |shard, call, body| {
    Box::pin(delete_records(shard.clone(), call.context, body))
});
