//! FindCoordinator: the core (broker) that coordinates a group. Transactional ids are refused
//! until transactions are served. Runs on the receiving core.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::group_lookup::text;
use super::{RequestContext, Response, ready};
use crate::group::coordinator_core;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub(super) const KEY_TYPE_GROUP: i8 = 0;

pub fn find_coordinator(
    shard: &Shard,
    context: &RequestContext,
    request: FindCoordinatorRequest,
) -> Response {
    let cores = shard.core_ports.len() as u32;
    let locate = |key: &str| -> (ErrorCode, i32, i32) {
        if request.key_type != KEY_TYPE_GROUP {
            // Until transactions are served, a transactional producer must fail at once.
            // COORDINATOR_NOT_AVAILABLE is retriable: clients retry it until their own
            // timeout (15-60 s). Every client treats this one as fatal.
            return (ErrorCode::TransactionalIdAuthorizationFailed, -1, -1);
        }
        if key.is_empty() {
            return (ErrorCode::InvalidGroupId, -1, -1);
        }
        let core = coordinator_core(key, cores);
        (
            ErrorCode::None,
            core as i32,
            i32::from(shard.core_ports[core as usize]),
        )
    };
    let host = text(&shard.config.advertised_host);
    let response = if context.api_version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .map(|key| {
                    let (error, node, port) = locate(key.as_str());
                    Coordinator::default()
                        .with_key(key.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(if error == ErrorCode::None {
                            host.clone()
                        } else {
                            StrBytes::default()
                        })
                        .with_port(port)
                        .with_error_code(error.code())
                        .with_error_message(refusal(error))
                })
                .collect(),
        )
    } else {
        let (error, node, port) = locate(request.key.as_str());
        FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_error_message(refusal(error).filter(|_| context.api_version >= 1))
            .with_node_id(BrokerId(node))
            .with_host(if error == ErrorCode::None {
                host
            } else {
                StrBytes::default()
            })
            .with_port(port)
    };
    context.respond(ResponseKind::FindCoordinator(response))
}

/// The message beside a refused transaction coordinator lookup.
pub(super) fn refusal(error: ErrorCode) -> Option<StrBytes> {
    (error == ErrorCode::TransactionalIdAuthorizationFailed)
        .then(|| StrBytes::from_static_str("transactions are not supported by this broker yet"))
}

served!(FindCoordinator, 0..=4, |shard, call, body| {
    ready(find_coordinator(shard, &call.context, body))
});
