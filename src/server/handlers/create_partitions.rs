//! CreatePartitions: through the controller on core 0; answered once every core sees the new
//! partitions.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, ResponseKind};

use super::topic_outcomes::{split, topic_name};
use super::{RequestContext, Response, ready};
use crate::cluster::control::ControllerRequest;
use crate::shard::Shard;

pub async fn create_partitions(
    shard: &Shard,
    context: &RequestContext,
    request: CreatePartitionsRequest,
) -> Response {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let assignments = topic
                .assignments
                .iter()
                .flatten()
                .map(|assignment| assignment.broker_ids.iter().map(|id| id.0).collect())
                .collect();
            (topic.name.as_str().to_string(), topic.count, assignments)
        })
        .collect();
    let outcomes = shard
        .control
        .ask_controller(ControllerRequest::CreatePartitions {
            topics,
            validate_only: request.validate_only,
        })
        .await;
    let results = outcomes
        .iter()
        .map(|outcome| {
            let (code, message) = split(outcome);
            CreatePartitionsTopicResult::default()
                .with_name(topic_name(&outcome.name))
                .with_error_code(code.code())
                .with_error_message(message)
        })
        .collect();
    context.respond(ResponseKind::CreatePartitions(
        CreatePartitionsResponse::default().with_results(results),
    ))
}

served!(CreatePartitions, 0..=3, |shard, call, body| {
    ready(create_partitions(shard, &call.context, body).await)
});
