//! ApiVersions: the versions of every API in the registry (`super::APIS`), so what is
//! advertised is exactly what is dispatched. Runs on the receiving core.

use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::{api_versions_response, ready};
use spindle_protocol::ErrorCode;

served!(ApiVersions, 0..=4, |shard, call, _| {
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
});
