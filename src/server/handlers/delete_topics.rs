//! DeleteTopics: through the controller on core 0; answered once every core has deleted the
//! topic's logs.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind};

use super::topic_outcomes::{split, topic_name};
use super::{RequestContext, Response, ready};
use crate::cluster::control::ControllerRequest;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

pub async fn delete_topics(
    shard: &Shard,
    context: &RequestContext,
    request: DeleteTopicsRequest,
) -> Response {
    let snapshot = shard.snapshot();
    // v6 names topics by name or id; earlier versions by name only.
    let mut wanted: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|name| (Some(name.as_str().to_string()), uuid::Uuid::nil()))
        .collect();
    wanted.extend(request.topics.iter().map(|topic| {
        let name = match &topic.name {
            Some(name) => Some(name.as_str().to_string()),
            None => snapshot
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone()),
        };
        (name, topic.topic_id)
    }));
    let names: Vec<String> = wanted.iter().filter_map(|(name, _)| name.clone()).collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::DeleteTopics { names })
        .await;
    let mut outcomes = outcomes.into_iter();
    // topic_id from v6, error_message from v5.
    let version = context.api_version;
    let id_if_served = |id: uuid::Uuid| if version >= 6 { id } else { uuid::Uuid::nil() };
    let responses = wanted
        .into_iter()
        .map(|(name, topic_id)| match name {
            None => DeletableTopicResult::default()
                .with_topic_id(id_if_served(topic_id))
                .with_error_code(ErrorCode::UnknownTopicId.code()),
            Some(name) => {
                let outcome = outcomes.next();
                let (code, message) = outcome
                    .as_ref()
                    .map(split)
                    .unwrap_or((ErrorCode::UnknownServerError, None));
                let topic_id = match outcome.as_ref().map(|o| &o.result) {
                    Some(Ok(Some(topic))) => topic.topic_id,
                    _ => topic_id,
                };
                DeletableTopicResult::default()
                    .with_name(Some(topic_name(&name)))
                    .with_topic_id(id_if_served(topic_id))
                    .with_error_code(code.code())
                    .with_error_message(message.filter(|_| version >= 5))
            }
        })
        .collect();
    context.respond(ResponseKind::DeleteTopics(
        DeleteTopicsResponse::default().with_responses(responses),
    ))
}

served!(DeleteTopics, 1..=6, |shard, call, body| {
    ready(delete_topics(shard, &call.context, body).await)
});
