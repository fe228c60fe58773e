//! DeleteRecords: each partition's log start offset raised on its leader (this core), and
//! persisted; the followers raise theirs from the leader's fetch answers. Answered with the
//! new low watermark (the log start) once the leader has it. `__consumer_offsets` is the
//! coordinators' own: INVALID_TOPIC_EXCEPTION, as a produce to it gets.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, ResponseKind};

use super::{RequestContext, Response};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::server::error_codes::ToErrorCode;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub async fn delete_records(
    shard: Rc<Shard>,
    context: RequestContext,
    request: DeleteRecordsRequest,
) -> Response {
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
                        Ok(low_watermark) => answer.with_low_watermark(low_watermark),
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

served!(DeleteRecords, 0..=2, |shard, call, body| {
    Box::pin(delete_records(shard.clone(), call.context, body))
});
