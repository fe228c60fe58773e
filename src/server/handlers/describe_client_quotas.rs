//! DescribeClientQuotas: the client-id quotas in this core's snapshot that match the
//! request's filter (Kafka's match types: an exact name, the default entity, or any
//! named entity; `strict` leaves out entities with components the filter does not name).

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    DescribeClientQuotasRequest, DescribeClientQuotasResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::{RequestContext, Response, ready};
use crate::cluster::client_quotas::{CLIENT_ID, QuotaEntity};
use crate::shard::Shard;
use spindle_protocol::ErrorCode;

/// Kafka's match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// Whether `entity` passes every component of the filter; `Err` for a malformed filter.
fn matches(
    entity: &QuotaEntity,
    components: &[(String, i8, Option<String>)],
    strict: bool,
) -> Result<bool, String> {
    let mut names_client_id = false;
    for (entity_type, match_type, name) in components {
        if entity_type != CLIENT_ID {
            // Only client-id entities exist here, so a filter on another type matches
            // none of them (none has that component).
            return Ok(false);
        }
        if names_client_id {
            return Err(format!("{CLIENT_ID} filtered twice"));
        }
        names_client_id = true;
        let passes = match (*match_type, name) {
            (MATCH_EXACT, Some(name)) => entity.client_id.as_deref() == Some(name.as_str()),
            (MATCH_EXACT, None) => return Err("an exact match needs a name".into()),
            (MATCH_DEFAULT, _) => entity.client_id.is_none(),
            (MATCH_SPECIFIED, _) => entity.client_id.is_some(),
            (other, _) => return Err(format!("unknown match type {other}")),
        };
        if !passes {
            return Ok(false);
        }
    }
    // Strict: the entity has no component the filter leaves out.
    Ok(!strict || names_client_id)
}

pub fn describe_client_quotas(
    shard: &Shard,
    context: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> Response {
    let components: Vec<(String, i8, Option<String>)> = request
        .components
        .iter()
        .map(|c| {
            (
                c.entity_type.to_string(),
                c.match_type,
                c._match.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    let snapshot = shard.snapshot();
    let mut entries = Vec::new();
    for (entity, values) in snapshot.client_quotas.iter() {
        match matches(entity, &components, request.strict) {
            Ok(false) => {}
            Ok(true) => entries.push(
                EntryData::default()
                    .with_entity(vec![
                        EntityData::default()
                            .with_entity_type(StrBytes::from_static_str(CLIENT_ID))
                            .with_entity_name(entity.client_id.clone().map(StrBytes::from_string)),
                    ])
                    .with_values(
                        values
                            .iter()
                            .map(|(key, value)| {
                                ValueData::default()
                                    .with_key(StrBytes::from_string(key.clone()))
                                    .with_value(*value)
                            })
                            .collect(),
                    ),
            ),
            Err(reason) => {
                return context.respond(ResponseKind::DescribeClientQuotas(
                    DescribeClientQuotasResponse::default()
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(reason))),
                ));
            }
        }
    }
    context.respond(ResponseKind::DescribeClientQuotas(
        DescribeClientQuotasResponse::default().with_entries(Some(entries)),
    ))
}

served!(DescribeClientQuotas, 0..=1, |shard, call, body| {
    ready(describe_client_quotas(shard, &call.context, body))
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_kafkas_match_types_say() {
        let named = QuotaEntity {
            client_id: Some("a".into()),
        };
        let default = QuotaEntity { client_id: None };
        let filter = |match_type: i8, name: Option<&str>| {
            vec![(CLIENT_ID.to_string(), match_type, name.map(str::to_string))]
        };
        assert_eq!(
            matches(&named, &filter(MATCH_EXACT, Some("a")), true),
            Ok(true)
        );
        assert_eq!(
            matches(&named, &filter(MATCH_EXACT, Some("b")), false),
            Ok(false)
        );
        assert_eq!(
            matches(&default, &filter(MATCH_DEFAULT, None), true),
            Ok(true)
        );
        assert_eq!(
            matches(&named, &filter(MATCH_DEFAULT, None), true),
            Ok(false)
        );
        assert_eq!(
            matches(&named, &filter(MATCH_SPECIFIED, None), false),
            Ok(true)
        );
        assert_eq!(
            matches(&default, &filter(MATCH_SPECIFIED, None), false),
            Ok(false)
        );
        // No components: everything unless strict.
        assert_eq!(matches(&named, &[], false), Ok(true));
        assert_eq!(matches(&named, &[], true), Ok(false));
        // Another entity type: no client-id entity has it.
        let user = vec![("user".to_string(), MATCH_SPECIFIED, None)];
        assert_eq!(matches(&named, &user, false), Ok(false));
        assert!(matches(&named, &filter(7, None), false).is_err());
        assert!(matches(&named, &filter(MATCH_EXACT, None), false).is_err());
    }
}
