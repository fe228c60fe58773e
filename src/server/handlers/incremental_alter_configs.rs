//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's overrides
//! (`kafka-configs --alter`, AdminClient.incrementalAlterConfigs), decided by the
//! controller and applied live to the topic's open logs (see `alter_configs`).

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::alter_configs::alter_resources;
use super::{RequestContext, Response, ready};
use crate::cluster::control::{ConfigOp, TopicConfigChange};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// Kafka's AlterConfigOp types.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// One alteration as the controller takes it, or INVALID_REQUEST for an unknown operation
/// or a missing value.
fn config_op(config: &AlterableConfig) -> Result<ConfigOp, (ErrorCode, String)> {
    let name = config.name.to_string();
    let value = || {
        config.value.as_ref().map(|v| v.to_string()).ok_or_else(|| {
            (
                ErrorCode::InvalidRequest,
                format!("a null value for {name}"),
            )
        })
    };
    match config.config_operation {
        OP_SET => Ok(ConfigOp::Set(name.clone(), value()?)),
        OP_DELETE => Ok(ConfigOp::Delete(name)),
        OP_APPEND => Ok(ConfigOp::Append(name.clone(), value()?)),
        OP_SUBTRACT => Ok(ConfigOp::Subtract(name.clone(), value()?)),
        other => Err((
            ErrorCode::InvalidRequest,
            format!("unknown config operation {other} for {name}"),
        )),
    }
}

pub async fn incremental_alter_configs(
    shard: &Shard,
    context: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Response {
    let resources = request
        .resources
        .iter()
        .map(|resource| {
            let ops: Result<Vec<ConfigOp>, (ErrorCode, String)> =
                resource.configs.iter().map(config_op).collect();
            (
                resource.resource_type,
                resource.resource_name.to_string(),
                ops.map(TopicConfigChange::Incremental),
            )
        })
        .collect();
    let answers = alter_resources(shard, resources, request.validate_only).await;
    let responses = answers
        .into_iter()
        .map(|(resource_type, name, code, message)| {
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name))
                .with_error_code(code.code())
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    context.respond(ResponseKind::IncrementalAlterConfigs(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
    ))
}

served!(IncrementalAlterConfigs, 0..=1, |shard, call, body| {
    ready(incremental_alter_configs(shard, &call.context, body).await)
});
