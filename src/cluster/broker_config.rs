//! Dynamic broker configs, as `kafka-configs --entity-type brokers --alter` sets them: the
//! topic defaults an operator changes while the brokers run, for the whole cluster
//! (resource name "", Kafka's `--entity-default`) or for one broker (its id). Each is the
//! broker-side name of a topic config (`log.retention.ms` for `retention.ms`), follows that
//! config's rules, and takes effect on every open log whose topic does not override it.
//! Settings that size the broker itself (listeners, cores, memory budgets) stay start-time
//! flags, as Kafka's read-only configs do.
//!
//! Precedence, as in Kafka: a topic's override, then the broker's own dynamic value, then
//! the cluster-wide dynamic default, then the `spindle serve` flag. The controller (core 0,
//! or the quorum on every node) stores them with the metadata; every core reads them from
//! its snapshot. Pure.

use std::collections::BTreeMap;

use crate::cluster::topic_config::{
    ConfigSource, TopicConfig, UNCLEAN_LEADER_ELECTION_ENABLE, WRITE_CACHING, boolean, topic_config,
};
use crate::storage::LogConfig;

/// Whose dynamic configs: `None` the cluster-wide default, `Some(id)` one broker's.
pub type BrokerScope = Option<u32>;

/// Every scope's dynamic configs, by broker-side name.
pub type BrokerConfigs = BTreeMap<BrokerScope, BTreeMap<String, String>>;

/// The broker configs that change while the brokers run, each with the topic config it is
/// the default of (Kafka's synonyms).
pub const DYNAMIC_BROKER_CONFIGS: &[(&str, &str)] = &[
    ("compression.type", "compression.type"),
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.roll.ms", "segment.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("message.max.bytes", "max.message.bytes"),
    ("min.insync.replicas", "min.insync.replicas"),
    (
        "unclean.leader.election.enable",
        UNCLEAN_LEADER_ELECTION_ENABLE,
    ),
    // Redpanda's cluster property is `write_caching_default`; dotted here like the others.
    ("write.caching.default", WRITE_CACHING),
];

/// The topic config whose default the dynamic broker config `name` is.
pub fn dynamic_broker_config(name: &str) -> Option<&'static TopicConfig> {
    DYNAMIC_BROKER_CONFIGS
        .iter()
        .find(|(broker_name, _)| *broker_name == name)
        .and_then(|(_, topic_name)| topic_config(topic_name))
}

/// The broker-side name of topic config `topic_name`, if brokers set its default.
pub fn broker_synonym(topic_name: &str) -> Option<&'static str> {
    DYNAMIC_BROKER_CONFIGS
        .iter()
        .find(|(_, name)| *name == topic_name)
        .map(|(broker_name, _)| *broker_name)
}

/// Checks one dynamic broker config; `Err` holds a one-line reason.
pub fn validate_broker_config(key: &str, value: &str) -> Result<(), String> {
    let config = dynamic_broker_config(key)
        .ok_or_else(|| format!("{key} is not a dynamic broker config"))?;
    (config.validate)(value).map_err(|reason| format!("{key}={value}: {reason}"))
}

/// The dynamic value of broker config `key` in force on `broker`, and where it is set.
pub fn dynamic_value<'a>(
    configs: &'a BrokerConfigs,
    broker: u32,
    key: &str,
) -> Option<(&'a str, ConfigSource)> {
    let scoped = |scope: BrokerScope| configs.get(&scope).and_then(|set| set.get(key));
    scoped(Some(broker))
        .map(|value| (value.as_str(), ConfigSource::DynamicBroker))
        .or_else(|| scoped(None).map(|value| (value.as_str(), ConfigSource::DynamicDefaultBroker)))
}

/// Where the value of topic config `topic_name` comes from on `broker` when the topic does
/// not set it: a dynamic broker config, else Spindle's default.
pub fn inherited_source(configs: &BrokerConfigs, broker: u32, topic_name: &str) -> ConfigSource {
    broker_synonym(topic_name)
        .and_then(|key| dynamic_value(configs, broker, key))
        .map_or(ConfigSource::Default, |(_, source)| source)
}

/// Kafka's synonyms of a config (DescribeConfigs with `include_synonyms`): every place a
/// value of it is set, the one in force first, as `(name, value, source)`. `topic_name` is
/// the topic config; `topic_value` the topic's own value, `None` for a broker resource
/// (whose list starts at the broker-side name).
pub fn config_synonyms(
    static_defaults: &LogConfig,
    configs: &BrokerConfigs,
    broker: u32,
    topic_name: &str,
    topic_value: Option<&str>,
) -> Vec<(String, String, ConfigSource)> {
    let Some(config) = topic_config(topic_name) else {
        return Vec::new();
    };
    let mut synonyms = Vec::new();
    if let Some(value) = topic_value {
        synonyms.push((
            topic_name.to_string(),
            value.to_string(),
            ConfigSource::Topic,
        ));
    }
    let name = broker_synonym(topic_name).unwrap_or(topic_name);
    if broker_synonym(topic_name).is_some() {
        for (scope, source) in [
            (Some(broker), ConfigSource::DynamicBroker),
            (None, ConfigSource::DynamicDefaultBroker),
        ] {
            if let Some(value) = configs.get(&scope).and_then(|set| set.get(name)) {
                synonyms.push((name.to_string(), value.clone(), source));
            }
        }
    }
    let flag = (config.default)(static_defaults);
    let default = (config.default)(&LogConfig::DEFAULT);
    if flag != default {
        synonyms.push((name.to_string(), flag, ConfigSource::StaticBroker));
    }
    synonyms.push((name.to_string(), default, ConfigSource::Default));
    synonyms
}

/// The log defaults in force on `broker`: the start-time settings, then the cluster-wide
/// dynamic defaults, then the broker's own. Topic overrides go on top of these.
pub fn broker_log_defaults(
    static_defaults: &LogConfig,
    configs: &BrokerConfigs,
    broker: u32,
) -> LogConfig {
    let mut log = static_defaults.clone();
    for scope in [None, Some(broker)] {
        for (key, value) in configs.get(&scope).into_iter().flatten() {
            if let Some(apply) = dynamic_broker_config(key).and_then(|config| config.apply) {
                apply(&mut log, value);
            }
        }
    }
    log
}

/// Whether unclean leader election is on for topics that do not set it: the cluster-wide
/// dynamic default (the controller decides elections for the whole cluster).
pub fn unclean_election_default(configs: &BrokerConfigs) -> bool {
    configs
        .get(&None)
        .and_then(|set| set.get(broker_synonym(UNCLEAN_LEADER_ELECTION_ENABLE)?))
        .is_some_and(|value| boolean(value) == Some(true))
}

/// The metadata file's line for one scope: `broker-config <default|id> key=value ...`.
pub fn encode_broker_config_line(scope: BrokerScope, configs: &BTreeMap<String, String>) -> String {
    let mut line = match scope {
        None => "broker-config default".to_string(),
        Some(id) => format!("broker-config {id}"),
    };
    for (key, value) in configs {
        line.push_str(&format!(" {key}={value}"));
    }
    line
}

/// The words after `broker-config` of [`encode_broker_config_line`], checked.
pub fn decode_broker_config_line<'a>(
    mut words: impl Iterator<Item = &'a str>,
) -> Result<(BrokerScope, BTreeMap<String, String>), String> {
    let scope = match words.next() {
        Some("default") => None,
        Some(id) => Some(id.parse().map_err(|_| format!("bad broker id '{id}'"))?),
        None => return Err("no broker scope".into()),
    };
    let mut configs = BTreeMap::new();
    for pair in words {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("bad config '{pair}'"))?;
        validate_broker_config(key, value)?;
        configs.insert(key.to_string(), value.to_string());
    }
    Ok((scope, configs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topic_config::TOPIC_CONFIGS;

    fn configs(scoped: &[(BrokerScope, &str, &str)]) -> BrokerConfigs {
        let mut configs = BrokerConfigs::new();
        for (scope, key, value) in scoped {
            configs
                .entry(*scope)
                .or_default()
                .insert(key.to_string(), value.to_string());
        }
        configs
    }

    #[test]
    fn every_synonym_names_a_topic_config_once() {
        for (broker_name, topic_name) in DYNAMIC_BROKER_CONFIGS {
            assert!(topic_config(topic_name).is_some(), "{topic_name}");
            assert_eq!(broker_synonym(topic_name), Some(*broker_name));
        }
        // Every topic config a log reads has a broker default, except Spindle's own.
        for config in TOPIC_CONFIGS.iter().filter(|c| c.apply.is_some()) {
            assert!(
                broker_synonym(config.name).is_some()
                    || config.name == "validate.compressed.records",
                "{} has no broker-side default",
                config.name
            );
        }
    }

    #[test]
    fn a_brokers_own_value_beats_the_cluster_default_which_beats_the_flag() {
        let flags = LogConfig {
            retention_ms: 1000,
            segment_bytes: 1 << 20,
            ..LogConfig::DEFAULT
        };
        let set = configs(&[
            (None, "log.retention.ms", "5000"),
            (None, "log.segment.bytes", "65536"),
            (Some(3), "log.retention.ms", "9000"),
        ]);
        let on_3 = broker_log_defaults(&flags, &set, 3);
        assert_eq!((on_3.retention_ms, on_3.segment_bytes), (9000, 65536));
        let on_4 = broker_log_defaults(&flags, &set, 4);
        assert_eq!((on_4.retention_ms, on_4.segment_bytes), (5000, 65536));
        assert_eq!(broker_log_defaults(&flags, &BrokerConfigs::new(), 3), flags);
        assert_eq!(
            dynamic_value(&set, 3, "log.retention.ms"),
            Some(("9000", ConfigSource::DynamicBroker))
        );
        assert_eq!(
            dynamic_value(&set, 4, "log.retention.ms"),
            Some(("5000", ConfigSource::DynamicDefaultBroker))
        );
        assert_eq!(dynamic_value(&set, 4, "log.roll.ms"), None);
    }

    #[test]
    fn synonyms_list_every_place_a_value_is_set_the_one_in_force_first() {
        let flags = LogConfig {
            retention_ms: 1000,
            ..LogConfig::DEFAULT
        };
        let set = configs(&[
            (None, "log.retention.ms", "5000"),
            (Some(3), "log.retention.ms", "9000"),
        ]);
        let sources =
            |synonyms: Vec<(String, String, ConfigSource)>| -> Vec<(String, ConfigSource)> {
                synonyms
                    .into_iter()
                    .map(|(name, value, source)| (format!("{name}={value}"), source))
                    .collect()
            };
        assert_eq!(
            sources(config_synonyms(&flags, &set, 3, "retention.ms", Some("1"))),
            vec![
                ("retention.ms=1".to_string(), ConfigSource::Topic),
                (
                    "log.retention.ms=9000".to_string(),
                    ConfigSource::DynamicBroker
                ),
                (
                    "log.retention.ms=5000".to_string(),
                    ConfigSource::DynamicDefaultBroker
                ),
                (
                    "log.retention.ms=1000".to_string(),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.retention.ms=604800000".to_string(),
                    ConfigSource::Default
                ),
            ]
        );
        assert_eq!(
            sources(config_synonyms(
                &LogConfig::DEFAULT,
                &set,
                4,
                "segment.ms",
                None
            )),
            vec![("log.roll.ms=604800000".to_string(), ConfigSource::Default)]
        );
    }

    #[test]
    fn lines_round_trip_and_bad_lines_are_refused() {
        let set = configs(&[
            (None, "log.retention.ms", "5000"),
            (Some(7), "log.roll.ms", "60000"),
        ]);
        for (scope, values) in &set {
            let line = encode_broker_config_line(*scope, values);
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("broker-config"));
            assert_eq!(
                decode_broker_config_line(words),
                Ok((*scope, values.clone()))
            );
        }
        let decode = |line: &str| decode_broker_config_line(line.split(' '));
        assert!(decode("default log.retention.ms=-7").is_err());
        assert!(decode("default num.partitions=3").is_err());
        assert!(decode("x log.retention.ms=1").is_err());
    }

    #[test]
    fn unclean_election_default_reads_the_cluster_wide_value_only() {
        assert!(!unclean_election_default(&BrokerConfigs::new()));
        assert!(unclean_election_default(&configs(&[(
            None,
            "unclean.leader.election.enable",
            "TRUE"
        )])));
        assert!(!unclean_election_default(&configs(&[(
            Some(0),
            "unclean.leader.election.enable",
            "true"
        )])));
    }
}
