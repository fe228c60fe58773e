//! InitProducerId: producer ids and epochs for idempotent producers, from this core's
//! allocator. Runs on the receiving core.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

use super::{RequestContext, Response, ready};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// InitProducerId for idempotent producers: a new id from this core's allocator, or, when
/// the client names its id and epoch (v3+, after a fatal sequence error), the same id with
/// the next epoch. Transactional ids are not served yet.
pub fn init_producer_id(
    shard: &Shard,
    context: &RequestContext,
    request: InitProducerIdRequest,
) -> Response {
    let answer = |error: ErrorCode, producer_id: i64, producer_epoch: i16| {
        context.respond(ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(error.code())
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch),
        ))
    };
    // Null (or, leniently, empty) means an idempotent producer without transactions.
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.is_empty())
    {
        return answer(ErrorCode::TransactionalIdAuthorizationFailed, -1, -1);
    }
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if context.api_version >= 3 && id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return answer(ErrorCode::None, id, epoch + 1);
    }
    match shard.producer_ids.allocate() {
        Ok(id) => answer(ErrorCode::None, id, 0),
        Err(e) => {
            tracing::error!(core = shard.core, "allocating a producer id: {e}");
            answer(ErrorCode::KafkaStorageError, -1, -1)
        }
    }
}

served!(InitProducerId, 0..=5, |shard, call, body| {
    ready(init_producer_id(shard, &call.context, body))
});
