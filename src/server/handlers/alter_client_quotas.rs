//! AlterClientQuotas: client-id quotas set or removed. Each entry is checked here (entity,
//! keys, values); the valid ones go to the controller in one request, which persists the
//! new quotas and pushes them to every core with the snapshot. Answers in request order.

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::client_quotas::{QuotaAlteration, entity_from_components, validate_op};
use crate::cluster::control::ControllerRequest;
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// One request entry as checked: the alteration, or why it is refused.
fn check_entry(
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<QuotaAlteration, String> {
    let components: Vec<(String, Option<String>)> = entry
        .entity
        .iter()
        .map(|component| {
            (
                component.entity_type.to_string(),
                component.entity_name.as_ref().map(|name| name.to_string()),
            )
        })
        .collect();
    let entity = entity_from_components(&components)?;
    let mut ops = Vec::with_capacity(entry.ops.len());
    for op in &entry.ops {
        let value = (!op.remove).then_some(op.value);
        validate_op(op.key.as_str(), value)?;
        if ops.iter().any(|(key, _)| key == op.key.as_str()) {
            return Err(format!("{} named twice", op.key.as_str()));
        }
        ops.push((op.key.to_string(), value));
    }
    Ok(QuotaAlteration { entity, ops })
}

pub async fn alter_client_quotas(
    shard: &Shard,
    context: &RequestContext,
    request: AlterClientQuotasRequest,
) -> Response {
    let checked: Vec<Result<QuotaAlteration, String>> =
        request.entries.iter().map(check_entry).collect();
    let alterations: Vec<QuotaAlteration> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let mut outcomes = if alterations.is_empty() {
        Vec::new()
    } else {
        shard
            .control
            .ask_controller(ControllerRequest::AlterClientQuotas {
                alterations,
                validate_only: request.validate_only,
            })
            .await
    }
    .into_iter();
    let entries = request
        .entries
        .into_iter()
        .zip(checked)
        .map(|(entry, checked)| {
            let (code, message) = match checked {
                Err(reason) => (ErrorCode::InvalidRequest, Some(reason)),
                Ok(_) => match outcomes.next().map(|outcome| outcome.result) {
                    Some(Ok(_)) => (ErrorCode::None, None),
                    Some(Err((code, message))) => (code, Some(message)),
                    // The controller went away (shutdown): nothing was changed.
                    None => (
                        ErrorCode::UnknownServerError,
                        Some("the controller did not answer".into()),
                    ),
                },
            };
            EntryData::default()
                .with_error_code(code.code())
                .with_error_message(message.map(StrBytes::from_string))
                .with_entity(
                    entry
                        .entity
                        .into_iter()
                        .map(|component| {
                            EntityData::default()
                                .with_entity_type(component.entity_type)
                                .with_entity_name(component.entity_name)
                        })
                        .collect(),
                )
        })
        .collect();
    context.respond(ResponseKind::AlterClientQuotas(
        AlterClientQuotasResponse::default().with_entries(entries),
    ))
}

served!(AlterClientQuotas, 0..=1, |shard, call, body| {
    ready(alter_client_quotas(shard, &call.context, body).await)
});
