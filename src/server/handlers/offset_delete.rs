//! OffsetDelete: removes a group's committed offsets for partitions it no longer consumes.
//! Runs on the group's coordinator core.

use kafka_protocol::messages::*;

use super::group_lookup::coordinator_for;
use super::{RequestContext, Response, ready};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub async fn offset_delete(
    shard: &Shard,
    context: &RequestContext,
    request: OffsetDeleteRequest,
) -> Response {
    use kafka_protocol::messages::offset_delete_response::{
        OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    };
    let group_id = request.group_id.as_str();
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.as_str().to_string(), p.partition_index))
        })
        .collect();
    let outcome = match coordinator_for(shard, group_id) {
        Err(code) => Err(code),
        Ok(coordinator) => coordinator.delete_offsets(group_id, &partitions).await,
    };
    let response = match outcome {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(errors) => {
            let mut errors = errors.into_iter();
            OffsetDeleteResponse::default().with_topics(
                request
                    .topics
                    .iter()
                    .map(|t| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(
                                                errors.next().unwrap_or(ErrorCode::None).code(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
        }
    };
    context.respond(ResponseKind::OffsetDelete(response))
}

served!(OffsetDelete, 0..=0, |shard, call, body| {
    ready(offset_delete(shard, &call.context, body).await)
});
