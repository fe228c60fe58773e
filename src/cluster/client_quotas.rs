//! Client quotas as Kafka models them (KIP-546): an entity, here a client id (named or the
//! default for every client id without its own), and its quota values by key. Spindle
//! enforces `producer_byte_rate` and `consumer_byte_rate`, in bytes per second per broker,
//! which in Spindle is per core. Other entity types (`user`, `ip`) need authentication or
//! connection-rate limits that Spindle does not have yet, and are refused.
//!
//! Pure: the controller (core 0, or the quorum on every node) applies alterations to the
//! snapshot's [`ClientQuotas`]; every core reads them from its snapshot. The metadata file
//! keeps them as `quota` lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The quota keys enforced: bytes per second a client id may produce, and fetch, on each
/// broker (core).
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Kafka's entity type for client ids.
pub const CLIENT_ID: &str = "client-id";

/// A client-id entity: `None` is the default entity, which applies to every client id
/// without quotas of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub client_id: Option<String>,
}

impl QuotaEntity {
    /// As Kafka's tools print it.
    pub fn describe(&self) -> String {
        match &self.client_id {
            Some(name) => format!("client-id={name}"),
            None => "client-id=<default>".into(),
        }
    }
}

/// Every entity's quota values, by key.
pub type ClientQuotas = BTreeMap<QuotaEntity, BTreeMap<String, f64>>;

/// One entity's changes: each key set to a value, or removed (`None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaAlteration {
    pub entity: QuotaEntity,
    pub ops: Vec<(String, Option<f64>)>,
}

/// The entity an AlterClientQuotas/DescribeClientQuotas entry names, from its
/// `(entity type, name)` components. `Err` is the reason for INVALID_REQUEST.
pub fn entity_from_components(
    components: &[(String, Option<String>)],
) -> Result<QuotaEntity, String> {
    match components {
        [(entity_type, name)] if entity_type == CLIENT_ID => Ok(QuotaEntity {
            client_id: name.clone(),
        }),
        [] => Err("an entity needs at least one component".into()),
        [(entity_type, _)] if entity_type == "user" || entity_type == "ip" => Err(format!(
            "'{entity_type}' quotas are not served: Spindle enforces client-id quotas only"
        )),
        [(entity_type, _)] => Err(format!("unknown entity type '{entity_type}'")),
        _ => Err("Spindle enforces client-id quotas only, not combined entities".into()),
    }
}

/// Checks one operation: a known key, and a positive value when set.
pub fn validate_op(key: &str, value: Option<f64>) -> Result<(), String> {
    if key != PRODUCER_BYTE_RATE && key != CONSUMER_BYTE_RATE {
        return Err(format!(
            "'{key}' is not a quota Spindle enforces ({PRODUCER_BYTE_RATE}, {CONSUMER_BYTE_RATE})"
        ));
    }
    match value {
        Some(rate) if !(rate.is_finite() && rate > 0.0) => {
            Err(format!("{key} must be a positive number, not {rate}"))
        }
        _ => Ok(()),
    }
}

/// `quotas` with `alterations` applied in order; an entity left without values goes.
pub fn apply_alterations(quotas: &ClientQuotas, alterations: &[QuotaAlteration]) -> ClientQuotas {
    let mut next = quotas.clone();
    for alteration in alterations {
        let values = next.entry(alteration.entity.clone()).or_default();
        for (key, value) in &alteration.ops {
            match value {
                Some(value) => {
                    values.insert(key.clone(), *value);
                }
                None => {
                    values.remove(key);
                }
            }
        }
        if values.is_empty() {
            next.remove(&alteration.entity);
        }
    }
    next
}

/// The quota `key` that applies to `client_id`: its own entity's, or the default's.
pub fn quota_for(quotas: &ClientQuotas, client_id: &str, key: &str) -> Option<f64> {
    let named = QuotaEntity {
        client_id: Some(client_id.to_string()),
    };
    quotas
        .get(&named)
        .and_then(|values| values.get(key))
        .or_else(|| {
            quotas
                .get(&QuotaEntity { client_id: None })
                .and_then(|values| values.get(key))
        })
        .copied()
}

/// The metadata file's line for one entity: `quota <client id in hex, or -> key=value...`.
/// Hex, because a client id may hold any character, spaces included.
pub fn encode_quota_line(entity: &QuotaEntity, values: &BTreeMap<String, f64>) -> String {
    let name = match &entity.client_id {
        Some(name) => name.bytes().map(|b| format!("{b:02x}")).collect::<String>(),
        None => "-".into(),
    };
    let mut line = format!("quota {CLIENT_ID} {name}");
    for (key, value) in values {
        line.push_str(&format!(" {key}={value}"));
    }
    line
}

/// Reads an [`encode_quota_line`] line (the words after `quota`).
pub fn decode_quota_line<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Result<(QuotaEntity, BTreeMap<String, f64>), String> {
    if words.next() != Some(CLIENT_ID) {
        return Err("a quota line names a client-id entity".into());
    }
    let client_id = match words.next().ok_or("no client id")? {
        "-" => None,
        hex => {
            if hex.is_empty() || hex.len() % 2 != 0 {
                return Err("a client id is hex of even length".into());
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| "a client id is hex")?;
            Some(String::from_utf8(bytes).map_err(|_| "a client id is UTF-8")?)
        }
    };
    let mut values = BTreeMap::new();
    for pair in words {
        let (key, value) = pair.split_once('=').ok_or("a quota value is key=value")?;
        let value: f64 = value.parse().map_err(|_| "a quota value is a number")?;
        validate_op(key, Some(value))?;
        values.insert(key.to_string(), value);
    }
    Ok((QuotaEntity { client_id }, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> QuotaEntity {
        QuotaEntity {
            client_id: Some(name.into()),
        }
    }

    #[test]
    fn a_client_id_takes_its_own_quota_then_the_default() {
        let quotas = apply_alterations(
            &ClientQuotas::new(),
            &[
                QuotaAlteration {
                    entity: QuotaEntity { client_id: None },
                    ops: vec![(PRODUCER_BYTE_RATE.into(), Some(1000.0))],
                },
                QuotaAlteration {
                    entity: named("fast"),
                    ops: vec![
                        (PRODUCER_BYTE_RATE.into(), Some(5000.0)),
                        (CONSUMER_BYTE_RATE.into(), Some(7000.0)),
                    ],
                },
            ],
        );
        assert_eq!(quota_for(&quotas, "fast", PRODUCER_BYTE_RATE), Some(5000.0));
        assert_eq!(
            quota_for(&quotas, "other", PRODUCER_BYTE_RATE),
            Some(1000.0)
        );
        assert_eq!(quota_for(&quotas, "other", CONSUMER_BYTE_RATE), None);
        // Removing the last value removes the entity.
        let quotas = apply_alterations(
            &quotas,
            &[QuotaAlteration {
                entity: QuotaEntity { client_id: None },
                ops: vec![(PRODUCER_BYTE_RATE.into(), None)],
            }],
        );
        assert_eq!(quotas.len(), 1);
        assert_eq!(quota_for(&quotas, "other", PRODUCER_BYTE_RATE), None);
    }

    #[test]
    fn only_client_id_entities_and_the_two_byte_rates_are_taken() {
        let component = |t: &str, n: Option<&str>| (t.to_string(), n.map(str::to_string));
        assert_eq!(
            entity_from_components(&[component("client-id", Some("a"))]),
            Ok(named("a"))
        );
        assert_eq!(
            entity_from_components(&[component("client-id", None)]),
            Ok(QuotaEntity { client_id: None })
        );
        assert!(entity_from_components(&[component("user", Some("u"))]).is_err());
        assert!(entity_from_components(&[]).is_err());
        assert!(
            entity_from_components(&[
                component("user", Some("u")),
                component("client-id", Some("a"))
            ])
            .is_err()
        );
        assert!(validate_op(PRODUCER_BYTE_RATE, Some(1.0)).is_ok());
        assert!(validate_op(CONSUMER_BYTE_RATE, None).is_ok());
        assert!(validate_op(PRODUCER_BYTE_RATE, Some(0.0)).is_err());
        assert!(validate_op(PRODUCER_BYTE_RATE, Some(f64::NAN)).is_err());
        assert!(validate_op("request_percentage", Some(50.0)).is_err());
    }

    #[test]
    fn quota_lines_round_trip_any_client_id() {
        for entity in [named("a b=c\u{e9}"), QuotaEntity { client_id: None }] {
            let values = BTreeMap::from([
                (PRODUCER_BYTE_RATE.to_string(), 1048576.0),
                (CONSUMER_BYTE_RATE.to_string(), 0.5),
            ]);
            let line = encode_quota_line(&entity, &values);
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("quota"));
            assert_eq!(decode_quota_line(words), Ok((entity, values)));
        }
        assert!(decode_quota_line("client-id 6 x=1".split(' ')).is_err());
        assert!(decode_quota_line("user - producer_byte_rate=1".split(' ')).is_err());
        assert!(decode_quota_line("client-id - producer_byte_rate=-1".split(' ')).is_err());
    }
}
