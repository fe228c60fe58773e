//! AlterConfigs (the legacy API: a resource's overrides replaced whole), and the part it
//! shares with IncrementalAlterConfigs: topic resources go to the controller in one request
//! (core 0 decides, persists and pushes the snapshot; every core then applies the new
//! settings to its open logs of the topic), each broker resource in a request of its own
//! (dynamic broker configs, `broker_config`); other resource types are answered here.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::broker_config::BrokerScope;
use crate::cluster::control::{ControllerRequest, TopicConfigChange};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// Kafka's ConfigResource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// One resource of a request: its type and name, and the change asked for (or why it is
/// refused before the controller sees it).
pub(super) type ResourceChange = (i8, String, Result<TopicConfigChange, (ErrorCode, String)>);

/// A resource's answer: type, name, error and message.
pub(super) type ResourceAnswer = (i8, String, ErrorCode, Option<String>);

/// Decides every resource of a request: topics through the controller, in one request;
/// the others with the error they get. Answers in request order.
pub(super) async fn alter_resources(
    shard: &Shard,
    resources: Vec<ResourceChange>,
    validate_only: bool,
) -> Vec<ResourceAnswer> {
    let mut answers: Vec<Option<ResourceAnswer>> = Vec::with_capacity(resources.len());
    let mut topics = Vec::new();
    let mut asked = Vec::new();
    let local = shard.snapshot().local_broker(shard.core);
    for (index, (resource_type, name, change)) in resources.into_iter().enumerate() {
        let refused = match (resource_type, change) {
            (RESOURCE_TOPIC, Ok(change)) => {
                topics.push((name.clone(), change));
                asked.push(index);
                answers.push(None);
                continue;
            }
            (_, Err(refused)) => refused,
            (RESOURCE_BROKER, Ok(change)) => match broker_scope(&name, local) {
                Ok(scope) => {
                    let request = ControllerRequest::AlterBrokerConfigs {
                        scope,
                        change,
                        validate_only,
                    };
                    let outcome = shard.control.ask_controller(request).await.remove(0);
                    let (code, message) = match outcome.result {
                        Ok(_) => (ErrorCode::None, None),
                        Err((code, message)) => (code, Some(message)),
                    };
                    answers.push(Some((resource_type, name, code, message)));
                    continue;
                }
                Err(refused) => refused,
            },
            (other, Ok(_)) => (
                ErrorCode::InvalidRequest,
                format!("resource type {other} is not served"),
            ),
        };
        answers.push(Some((resource_type, name, refused.0, Some(refused.1))));
    }
    if !topics.is_empty() {
        let outcomes = shard
            .control
            .ask_controller(ControllerRequest::AlterTopicConfigs {
                topics,
                validate_only,
            })
            .await;
        for (index, outcome) in asked.into_iter().zip(outcomes) {
            let (code, message) = match outcome.result {
                Ok(_) => (ErrorCode::None, None),
                Err((code, message)) => (code, Some(message)),
            };
            answers[index] = Some((RESOURCE_TOPIC, outcome.name, code, message));
        }
    }
    answers
        .into_iter()
        .map(|answer| answer.expect("every resource answered"))
        .collect()
}

/// The scope a broker resource names: "" the whole cluster, else the id of the broker the
/// request came to (Kafka routes a broker's own configs to that broker).
fn broker_scope(name: &str, local: u32) -> Result<BrokerScope, (ErrorCode, String)> {
    if name.is_empty() {
        return Ok(None);
    }
    match name.parse::<u32>() {
        Ok(id) if id == local => Ok(Some(id)),
        Ok(_) => Err((
            ErrorCode::InvalidRequest,
            format!("unexpected broker id {name}: this is broker {local}"),
        )),
        Err(_) => Err((
            ErrorCode::InvalidRequest,
            format!("a broker id is an integer, not '{name}'"),
        )),
    }
}

pub async fn alter_configs(
    shard: &Shard,
    context: &RequestContext,
    request: AlterConfigsRequest,
) -> Response {
    let resources = request
        .resources
        .iter()
        .map(|resource| {
            let entries: Result<Vec<(String, String)>, (ErrorCode, String)> = resource
                .configs
                .iter()
                .map(|config| match &config.value {
                    Some(value) => Ok((config.name.to_string(), value.to_string())),
                    None => Err((
                        ErrorCode::InvalidRequest,
                        format!("a null value for {}", config.name.as_str()),
                    )),
                })
                .collect();
            (
                resource.resource_type,
                resource.resource_name.to_string(),
                entries.map(TopicConfigChange::Replace),
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
    context.respond(ResponseKind::AlterConfigs(
        AlterConfigsResponse::default().with_responses(responses),
    ))
}

served!(AlterConfigs, 0..=2, |shard, call, body| {
    ready(alter_configs(shard, &call.context, body).await)
});
