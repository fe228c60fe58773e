//! OffsetForLeaderEpoch (KIP-101/320): where a leader epoch ends in a partition's log, as
//! its leader holds it. A consumer asks after a leader change to learn whether the log it
//! read from was cut back past its position (log truncation); a follower could ask before
//! fetching (Spindle's own followers learn it from the replica fetch instead). Served by
//! the partition's leader on its core; `current_leader_epoch` fences a caller whose
//! metadata is older (FENCED_LEADER_EPOCH) or newer (UNKNOWN_LEADER_EPOCH) than this one's.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind,
};

use super::{RequestContext, Response, ready};
use crate::server::error_codes::ToErrorCode;
use crate::shard::Shard;

pub fn offset_for_leader_epoch(
    shard: &Shard,
    context: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Response {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|asked| {
                    let answer = EpochEndOffset::default()
                        .with_partition(asked.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    match shard.partition_in_epoch(
                        name,
                        asked.partition,
                        asked.current_leader_epoch,
                    ) {
                        Ok(owned) => {
                            let (epoch, end_offset) =
                                owned.log.end_offset_for_leader_epoch(asked.leader_epoch);
                            answer.with_leader_epoch(epoch).with_end_offset(end_offset)
                        }
                        Err(lookup) => answer.with_error_code(lookup.error_code().code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    context.respond(ResponseKind::OffsetForLeaderEpoch(
        OffsetForLeaderEpochResponse::default().with_topics(topics),
    ))
}

served!(OffsetForLeaderEpoch, 2..=4, |shard, call, body| {
    ready(offset_for_leader_epoch(shard, &call.context, body))
});
