//! Config changes (AlterConfigs, IncrementalAlterConfigs) as the controller decides them:
//! a topic's new overrides, or the new dynamic broker configs of one scope, each validated
//! against the table in `topic_config`, or Kafka's error for the first bad one. Pure; runs
//! where the controller runs (core 0, or every node's quorum task).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::broker_config::{BrokerConfigs, BrokerScope, dynamic_broker_config};
use crate::cluster::control::{ConfigOp, ControllerRequest, TopicConfigChange, TopicOutcome};
use crate::cluster::metadata::TopicMetadata;
use crate::cluster::topic_config::{ConfigType, TopicConfig, topic_config};
use crate::storage::LogConfig;
use spindle_protocol::ErrorCode;

type Outcome = Result<Option<Arc<TopicMetadata>>, (ErrorCode, String)>;

/// The rules a config name follows (a topic config's), or why it cannot be changed.
type Resolve<'a> = &'a dyn Fn(&str) -> Result<&'static TopicConfig, (ErrorCode, String)>;

/// `name`'s metadata with `change` applied; `Ok(None)` when the overrides stay the same.
pub(super) fn alter_topic_configs(
    topics: &BTreeMap<String, Arc<TopicMetadata>>,
    name: &str,
    change: &TopicConfigChange,
) -> Outcome {
    let Some(topic) = topics.get(name) else {
        return Err((ErrorCode::UnknownTopicOrPartition, "no such topic".into()));
    };
    let resolve = |key: &str| {
        topic_config(key).ok_or_else(|| {
            (
                ErrorCode::InvalidConfig,
                format!("unknown topic config '{key}'"),
            )
        })
    };
    let configs = changed_configs(&topic.configs, change, &resolve)?;
    if configs == topic.configs {
        return Ok(None);
    }
    Ok(Some(Arc::new(TopicMetadata {
        configs,
        ..(**topic).clone()
    })))
}

/// The dynamic broker configs with `change` applied to `scope`'s; `Ok(None)` when they stay
/// the same. A broker config that is not dynamic gets INVALID_REQUEST, as Kafka answers
/// "Cannot update these configs dynamically"; a bad value gets INVALID_CONFIG.
fn alter_broker_configs(
    configs: &BrokerConfigs,
    scope: BrokerScope,
    change: &TopicConfigChange,
) -> Result<Option<BrokerConfigs>, (ErrorCode, String)> {
    let resolve = |key: &str| {
        dynamic_broker_config(key).ok_or_else(|| {
            (
                ErrorCode::InvalidRequest,
                format!(
                    "{key} cannot be changed while the brokers run (a `spindle serve` flag, \
                     or unknown)"
                ),
            )
        })
    };
    let empty = BTreeMap::new();
    let before = configs.get(&scope).unwrap_or(&empty);
    let after = changed_configs(before, change, &resolve)?;
    if &after == before {
        return Ok(None);
    }
    let mut next = configs.clone();
    if after.is_empty() {
        next.remove(&scope);
    } else {
        next.insert(scope, after);
    }
    Ok(Some(next))
}

/// For AlterBrokerConfigs: the dynamic broker configs after it (`None` for any other
/// request, or when nothing changes or it only validates), and its one outcome.
pub fn apply_broker_config_request(
    request: &ControllerRequest,
    configs: &BrokerConfigs,
) -> Option<(Option<BrokerConfigs>, Vec<TopicOutcome>)> {
    let ControllerRequest::AlterBrokerConfigs {
        scope,
        change,
        validate_only,
    } = request
    else {
        return None;
    };
    let (next, result) = match alter_broker_configs(configs, *scope, change) {
        Ok(next) => (next.filter(|_| !validate_only), Ok(None)),
        Err(refused) => (None, Err(refused)),
    };
    let name = request.topic_names().remove(0);
    Some((next, vec![TopicOutcome { name, result }]))
}

/// `current` with `change` applied, every value checked by the rules `resolve` gives.
fn changed_configs(
    current: &BTreeMap<String, String>,
    change: &TopicConfigChange,
    resolve: Resolve,
) -> Result<BTreeMap<String, String>, (ErrorCode, String)> {
    let invalid = |message: String| (ErrorCode::InvalidConfig, message);
    let checked = |key: &str, value: &str| {
        let config = resolve(key)?;
        (config.validate)(value).map_err(|reason| invalid(format!("{key}={value}: {reason}")))
    };
    match change {
        TopicConfigChange::Replace(entries) => {
            let mut configs = BTreeMap::new();
            for (key, value) in entries {
                checked(key, value)?;
                if configs.insert(key.clone(), value.clone()).is_some() {
                    return Err(invalid(format!("{key} is set twice")));
                }
            }
            Ok(configs)
        }
        TopicConfigChange::Incremental(ops) => {
            let mut configs = current.clone();
            for op in ops {
                match op {
                    ConfigOp::Set(key, value) => {
                        checked(key, value)?;
                        configs.insert(key.clone(), value.clone());
                    }
                    ConfigOp::Delete(key) => {
                        resolve(key)?;
                        configs.remove(key);
                    }
                    ConfigOp::Append(key, item) | ConfigOp::Subtract(key, item) => {
                        let mut items =
                            list_items(&configs, key, resolve(key)?).map_err(invalid)?;
                        for item in item.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                            let present = items.iter().any(|i| i == item);
                            match op {
                                ConfigOp::Append(..) if !present => items.push(item.to_string()),
                                ConfigOp::Subtract(..) => items.retain(|i| i != item),
                                _ => {}
                            }
                        }
                        let value = items.join(",");
                        checked(key, &value)?;
                        configs.insert(key.clone(), value);
                    }
                }
            }
            Ok(configs)
        }
    }
}

/// The items of list config `key` now (its value, else its default), or why APPEND and
/// SUBTRACT do not apply to it (Kafka allows them on list configs only).
fn list_items(
    configs: &BTreeMap<String, String>,
    key: &str,
    config: &TopicConfig,
) -> Result<Vec<String>, String> {
    if config.config_type != ConfigType::List {
        return Err(format!(
            "{key} is not a list config: APPEND and SUBTRACT do not apply"
        ));
    }
    let value = configs
        .get(key)
        .cloned()
        .unwrap_or_else(|| (config.default)(&LogConfig::DEFAULT));
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topic_config::TOPIC_CONFIGS;
    use uuid::Uuid;

    fn topics(configs: &[(&str, &str)]) -> BTreeMap<String, Arc<TopicMetadata>> {
        let topic = TopicMetadata {
            name: "t".into(),
            topic_id: Uuid::nil(),
            partition_brokers: vec![0],
            partition_followers: Vec::new(),
            partition_isr: Vec::new(),
            partition_epochs: Vec::new(),
            partition_preferred: Vec::new(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            partition_reassignments: BTreeMap::new(),
        };
        BTreeMap::from([("t".to_string(), Arc::new(topic))])
    }

    fn incremental(ops: Vec<ConfigOp>) -> TopicConfigChange {
        TopicConfigChange::Incremental(ops)
    }

    fn set(key: &str, value: &str) -> ConfigOp {
        ConfigOp::Set(key.into(), value.into())
    }

    #[test]
    fn set_and_delete_change_only_the_keys_named() {
        let before = topics(&[("retention.ms", "1000"), ("segment.bytes", "65536")]);
        let change = incremental(vec![
            set("retention.ms", "5000"),
            ConfigOp::Delete("segment.bytes".into()),
        ]);
        let after = alter_topic_configs(&before, "t", &change)
            .expect("valid")
            .expect("changed");
        assert_eq!(
            after.configs,
            BTreeMap::from([("retention.ms".to_string(), "5000".to_string())])
        );
        assert_eq!(after.topic_id, before["t"].topic_id);
    }

    #[test]
    fn replace_drops_every_override_not_named() {
        let before = topics(&[("retention.ms", "1000"), ("segment.bytes", "65536")]);
        let change = TopicConfigChange::Replace(vec![("retention.bytes".into(), "10".into())]);
        let after = alter_topic_configs(&before, "t", &change).unwrap().unwrap();
        assert_eq!(after.configs.len(), 1);
        assert_eq!(after.configs["retention.bytes"], "10");
    }

    #[test]
    fn append_and_subtract_work_on_list_configs_from_their_default() {
        let before = topics(&[]);
        let append = incremental(vec![ConfigOp::Append(
            "cleanup.policy".into(),
            "compact".into(),
        )]);
        let after = alter_topic_configs(&before, "t", &append).unwrap().unwrap();
        assert_eq!(after.configs["cleanup.policy"], "delete,compact");
        let after = topics(&[("cleanup.policy", "delete,compact")]);
        let subtract = incremental(vec![ConfigOp::Subtract(
            "cleanup.policy".into(),
            "delete".into(),
        )]);
        let after = alter_topic_configs(&after, "t", &subtract)
            .unwrap()
            .unwrap();
        assert_eq!(after.configs["cleanup.policy"], "compact");
    }

    #[test]
    fn bad_changes_get_kafkas_errors_and_change_nothing() {
        let before = topics(&[]);
        let code = |change: TopicConfigChange| {
            alter_topic_configs(&before, "t", &change)
                .expect_err("refused")
                .0
        };
        assert_eq!(
            code(incremental(vec![set("retention.ms", "-5")])),
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            code(incremental(vec![set("no.such", "1")])),
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            code(incremental(vec![ConfigOp::Append(
                "retention.ms".into(),
                "1".into()
            )])),
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            code(incremental(vec![ConfigOp::Subtract(
                "cleanup.policy".into(),
                "delete".into()
            )])),
            ErrorCode::InvalidConfig,
            "an empty cleanup.policy is no policy"
        );
        assert_eq!(
            alter_topic_configs(&before, "missing", &incremental(vec![]))
                .unwrap_err()
                .0,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            alter_topic_configs(&before, "t", &incremental(vec![])),
            Ok(None),
            "no change"
        );
    }

    #[test]
    fn every_list_config_is_one_append_and_subtract_understand() {
        for config in TOPIC_CONFIGS
            .iter()
            .filter(|c| c.config_type == ConfigType::List)
        {
            assert!(list_items(&BTreeMap::new(), config.name, config).is_ok());
        }
    }
}
