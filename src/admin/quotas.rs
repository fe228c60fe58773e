//! `spindle cluster quotas describe|alter`: client quotas of any Kafka-compatible cluster
//! (DescribeClientQuotas, AlterClientQuotas), in the shape of rpk's `cluster quotas`: an
//! entity is `--name TYPE=NAME` or `--default TYPE`; `describe` also takes `--any TYPE`.
//! Main thread.

use std::process::ExitCode;

use clap::{ArgGroup, Subcommand};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::{Connection, Output, Table, client, error_text, key_value, print};

/// Kafka's DescribeClientQuotas match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

#[derive(Subcommand, Debug)]
pub enum QuotasCommand {
    /// The quotas of the entities matched (every entity without a filter).
    Describe {
        /// An entity by name, TYPE=NAME (client-id=app).
        #[arg(long, value_parser = key_value)]
        name: Vec<(String, String)>,
        /// The default entity of TYPE (client-id).
        #[arg(long)]
        default: Vec<String>,
        /// Every named entity of TYPE.
        #[arg(long)]
        any: Vec<String>,
        /// Only entities with no component beyond those given.
        #[arg(long)]
        strict: bool,
    },
    /// Sets (--add KEY=VALUE) or removes (--delete KEY) the quotas of one entity.
    #[command(group(ArgGroup::new("entity").required(true).args(["name", "default"])))]
    #[command(group(ArgGroup::new("ops").required(true).multiple(true).args(["add", "delete"])))]
    Alter {
        /// The entity by name, TYPE=NAME (client-id=app).
        #[arg(long, value_parser = key_value)]
        name: Option<(String, String)>,
        /// The default entity of TYPE (client-id).
        #[arg(long)]
        default: Option<String>,
        /// A quota to set, KEY=BYTES_PER_SECOND (producer_byte_rate=1048576).
        #[arg(long, value_parser = key_number)]
        add: Vec<(String, f64)>,
        /// A quota to remove.
        #[arg(long)]
        delete: Vec<String>,
        /// Ask the broker to check the change without making it.
        #[arg(long)]
        dry: bool,
    },
}

/// `KEY=NUMBER`.
fn key_number(text: &str) -> Result<(String, f64), String> {
    let (key, value) = key_value(text)?;
    let number: f64 = value
        .parse()
        .map_err(|_| format!("'{value}' in '{text}' is not a number"))?;
    Ok((key, number))
}

pub fn quotas(command: &QuotasCommand, connection: &Connection) -> ExitCode {
    print(
        &connection.format,
        quotas_output(command, &connection.brokers),
    )
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn quotas_output(command: &QuotasCommand, brokers: &str) -> Result<Output, String> {
    let mut broker = client::Client::connect(brokers)?;
    match command {
        QuotasCommand::Describe {
            name,
            default,
            any,
            strict,
        } => {
            let components = name
                .iter()
                .map(|(entity_type, name)| (entity_type, MATCH_EXACT, Some(name)))
                .chain(default.iter().map(|t| (t, MATCH_DEFAULT, None)))
                .chain(any.iter().map(|t| (t, MATCH_ANY, None)))
                .map(|(entity_type, match_type, name)| {
                    ComponentData::default()
                        .with_entity_type(s(entity_type))
                        .with_match_type(match_type)
                        .with_match(name.map(|n| s(n)))
                })
                .collect();
            let response: DescribeClientQuotasResponse = broker.call(
                ApiKey::DescribeClientQuotas,
                1,
                &DescribeClientQuotasRequest::default()
                    .with_components(components)
                    .with_strict(*strict),
            )?;
            if response.error_code != 0 {
                let message = response.error_message.map(|m| m.to_string());
                return Err(format!(
                    "{}{}",
                    error_text(response.error_code),
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ));
            }
            let mut table = Table::new(None, vec!["ENTITY", "KEY", "VALUE"]);
            let mut entries = Vec::new();
            for entry in response.entries.unwrap_or_default() {
                let entity: Vec<String> = entry
                    .entity
                    .iter()
                    .map(|c| match &c.entity_name {
                        Some(name) => format!("{}={name}", c.entity_type.as_str()),
                        None => format!("{}=<default>", c.entity_type.as_str()),
                    })
                    .collect();
                let entity = entity.join(",");
                let mut values = serde_json::Map::new();
                for value in &entry.values {
                    table.rows.push(vec![
                        entity.clone(),
                        value.key.to_string(),
                        value.value.to_string(),
                    ]);
                    values.insert(value.key.to_string(), json!(value.value));
                }
                entries.push(json!({"entity": entity, "values": values}));
            }
            Ok(Output {
                json: json!(entries),
                sections: vec![table],
                failed: false,
            })
        }
        QuotasCommand::Alter {
            name,
            default,
            add,
            delete,
            dry,
        } => {
            let (entity_type, entity_name) = match (name, default) {
                (Some((entity_type, name)), _) => (entity_type.as_str(), Some(name.as_str())),
                (None, Some(entity_type)) => (entity_type.as_str(), None),
                (None, None) => unreachable!("clap requires --name or --default"),
            };
            let ops = add
                .iter()
                .map(|(key, value)| OpData::default().with_key(s(key)).with_value(*value))
                .chain(
                    delete
                        .iter()
                        .map(|key| OpData::default().with_key(s(key)).with_remove(true)),
                )
                .collect();
            let response: AlterClientQuotasResponse = broker.call(
                ApiKey::AlterClientQuotas,
                1,
                &AlterClientQuotasRequest::default()
                    .with_entries(vec![
                        EntryData::default()
                            .with_entity(vec![
                                EntityData::default()
                                    .with_entity_type(s(entity_type))
                                    .with_entity_name(entity_name.map(s)),
                            ])
                            .with_ops(ops),
                    ])
                    .with_validate_only(*dry),
            )?;
            let answer = response.entries.first().ok_or("no answer for the entity")?;
            let code = answer.error_code;
            let message = answer.error_message.as_ref().map(|m| m.to_string());
            let entity = format!("{entity_type}={}", entity_name.unwrap_or("<default>"));
            let mut text = error_text(code);
            if let Some(message) = &message {
                text.push_str(&format!(": {message}"));
            }
            let mut table = Table::new(None, vec!["ENTITY", "RESULT"]);
            table.rows.push(vec![entity.clone(), text]);
            Ok(Output {
                json: json!([{"entity": entity, "error": (code != 0).then(|| error_text(code)), "message": message}]),
                sections: vec![table],
                failed: code != 0,
            })
        }
    }
}
