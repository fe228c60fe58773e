//! ListOffsets: earliest (-2, and -4 "earliest local"), latest (-1, the high watermark under
//! read_uncommitted), -5 (nothing pending upload: no tiered storage) and by timestamp (the
//! first offset whose record timestamp is at least the one asked), and -3 (v7+: the first
//! record with the largest timestamp) for the partitions this core owns, each with the
//! leader epoch that wrote it (v4+). A caller naming another leader epoch than this
//! leader's (`current_leader_epoch`, v4+) is fenced (KIP-320).

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, ResponseKind};

use super::{RequestContext, Response};
use crate::server::error_codes::ToErrorCode;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
/// v7+: the first record carrying the log's largest timestamp.
const MAX_TIMESTAMP: i64 = -3;
/// v8+: the earliest offset still on local disk; without tiered storage, the log start.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// v9+: the earliest offset not yet uploaded to tiered storage; none here.
const EARLIEST_PENDING_UPLOAD_TIMESTAMP: i64 = -5;

pub async fn list_offsets(
    shard: Rc<Shard>,
    context: RequestContext,
    request: ListOffsetsRequest,
) -> Response {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in &topic.partitions {
            // leader_epoch exists from v4; set below once the offset is known.
            let answer = ListOffsetsPartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let lookup = shard.partition_in_epoch(
                topic.name.as_str(),
                partition.partition_index,
                partition.current_leader_epoch,
            );
            let answer = match lookup {
                Err(lookup) => answer
                    .with_error_code(lookup.error_code().code())
                    .with_leader_epoch(-1),
                Ok(owned) => {
                    let log = owned.log;
                    let found = match partition.timestamp {
                        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                            answer.with_offset(log.log_start_offset())
                        }
                        EARLIEST_PENDING_UPLOAD_TIMESTAMP => answer,
                        LATEST_TIMESTAMP => answer.with_offset(log.high_watermark()),
                        timestamp if timestamp >= 0 || timestamp == MAX_TIMESTAMP => {
                            let timestamp = match timestamp {
                                MAX_TIMESTAMP => log.max_timestamp(),
                                timestamp => timestamp,
                            };
                            match log.offset_for_timestamp(timestamp).await {
                                Ok(Some(found)) => answer
                                    .with_offset(found.offset)
                                    .with_timestamp(found.timestamp),
                                Ok(None) => answer,
                                Err(error) => answer.with_error_code(error.error_code().code()),
                            }
                        }
                        // Special values newer than this table (v11's -6: latest tiered).
                        _ => answer.with_error_code(ErrorCode::InvalidRequest.code()),
                    };
                    let epoch = if context.api_version < 4 || found.offset < 0 {
                        -1
                    } else if partition.timestamp == LATEST_TIMESTAMP {
                        log.latest_leader_epoch().unwrap_or(-1)
                    } else {
                        // The epoch that wrote the offset found: a client validates its
                        // position with it after a leader change (KIP-320).
                        log.leader_epoch_for_offset(found.offset).unwrap_or(-1)
                    };
                    found.with_leader_epoch(epoch)
                }
            };
            partitions.push(answer);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    context.respond(ResponseKind::ListOffsets(
        ListOffsetsResponse::default().with_topics(topics),
    ))
}

served!(ListOffsets, 1..=10, |shard, call, body| {
    Box::pin(list_offsets(shard.clone(), call.context, body))
});
