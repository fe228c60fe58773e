//! ApiVersions: the versions of every API in the registry (`super::APIS`), so what is
//! advertised is exactly what is dispatched. Runs on the receiving core.

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::{Api, Call, InOrder, api_versions_response, ready};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// This API's entry in the registry (`super::APIS`).
pub const API: Api = Api::new(ApiKey::ApiVersions, 0, 4, serve);

fn serve(shard: &Rc<Shard>, call: Call) -> InOrder<'_> {
    Box::pin(async move {
        let RequestKind::ApiVersions(_) = call.body else {
            return call.context.mismatched();
        };
        let mut body = api_versions_response(ErrorCode::None);
        if let Some(max) = shard.config.fault_fetch_version_max {
            // Testing only: a client then negotiates this Fetch version at most.
            for api in body.api_keys.iter_mut() {
                if api.api_key == ApiKey::Fetch as i16 {
                    api.max_version = api.max_version.min(max);
                }
            }
        }
        ready(call.context.respond(ResponseKind::ApiVersions(body)))
    })
}
