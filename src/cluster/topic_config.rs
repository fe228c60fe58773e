//! Every topic config Spindle understands, in one table: its name, Kafka's config type, its
//! default (the broker's log setting when there is one), how a value is checked, and how it
//! applies to a partition log's settings. CreateTopics validation, DescribeConfigs and the
//! log settings of each partition all read this table, and a changed config reaches logs
//! that are already open (`PartitionLog::set_topic_config`). Pure: runs on any core.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::storage::config::BLOCK_BYTES;
use crate::storage::{CleanupPolicy, FlushPolicy, LogConfig};
use spindle_protocol::compression::codec_id_by_name;

/// Spindle's topic config (no Kafka equivalent: Kafka always validates): `false` checks
/// compressed batches by their header and CRC only, without decompressing their records.
pub const VALIDATE_COMPRESSED_RECORDS: &str = "validate.compressed.records";

/// Redpanda's topic config: `true` answers acks=all once the batch is written (and
/// replicated), without waiting for an fdatasync (see `LogConfig::write_caching`).
pub const WRITE_CACHING: &str = "write.caching";

/// Kafka's `min.insync.replicas`: acks=all is refused (NOT_ENOUGH_REPLICAS) while fewer
/// replicas are in sync.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Kafka's `unclean.leader.election.enable`: whether a partition whose in-sync replicas
/// are all down may be led by a live replica that is not in sync, giving up what only the
/// in-sync ones held so that the partition serves again. Read by the controller.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// Kafka's DescribeConfigs `ConfigType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
}

impl ConfigType {
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// Where a value in force comes from, with Kafka's DescribeConfigs `ConfigSource` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Topic,
    DynamicBroker,
    DynamicDefaultBroker,
    StaticBroker,
    Default,
}

impl ConfigSource {
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::Topic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One topic config.
pub struct TopicConfig {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// The value in force when the topic sets none, given the broker's log defaults.
    pub default: fn(&LogConfig) -> String,
    /// Why `value` is refused, if it is (the caller prefixes `name=value: `).
    pub validate: fn(&str) -> Result<(), String>,
    /// How a valid value changes a log's settings; `None` when no log reads it.
    pub apply: Option<fn(&mut LogConfig, &str)>,
}

/// The table. Anything else is INVALID_CONFIG, as Kafka answers an unknown topic config.
pub const TOPIC_CONFIGS: &[TopicConfig] = &[
    TopicConfig {
        name: "cleanup.policy",
        config_type: ConfigType::List,
        default: |log| match (log.cleanup_policy.compact, log.cleanup_policy.delete) {
            (true, true) => "compact,delete".into(),
            (true, false) => "compact".into(),
            _ => "delete".into(),
        },
        validate: |value| match CleanupPolicy::parse(value) {
            Some(_) => Ok(()),
            None => Err("expected delete, compact or compact,delete".into()),
        },
        apply: Some(|log, value| {
            log.cleanup_policy = CleanupPolicy::parse(value).expect("validated when stored");
        }),
    },
    TopicConfig {
        name: "compression.type",
        config_type: ConfigType::String,
        default: |log| match log.compression_codec {
            None => "producer".into(),
            Some(id) => ["uncompressed", "gzip", "snappy", "lz4", "zstd"]
                .into_iter()
                .find(|name| codec_id_by_name(name) == Some(id))
                .unwrap_or("producer")
                .into(),
        },
        validate: |value| match value {
            "producer" => Ok(()),
            _ if codec_id_by_name(value).is_some() => Ok(()),
            _ => Err("expected producer, uncompressed, gzip, snappy, lz4 or zstd".into()),
        },
        apply: Some(|log, value| log.compression_codec = codec_id_by_name(value)),
    },
    TopicConfig {
        name: "delete.retention.ms",
        config_type: ConfigType::Long,
        default: |log| log.delete_retention_ms.to_string(),
        validate: |value| integer_within(value, 0, i64::MAX),
        apply: Some(|log, value| log.delete_retention_ms = parsed(value)),
    },
    TopicConfig {
        name: "min.cleanable.dirty.ratio",
        config_type: ConfigType::Double,
        default: |log| log.min_cleanable_dirty_ratio.to_string(),
        validate: |value| match value.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(()),
            _ => Err("expected a number in [0, 1]".into()),
        },
        apply: Some(|log, value| {
            log.min_cleanable_dirty_ratio = value.parse().expect("validated when stored");
        }),
    },
    TopicConfig {
        name: "retention.ms",
        config_type: ConfigType::Long,
        default: |log| log.retention_ms.to_string(),
        validate: |value| integer_within(value, -1, i64::MAX),
        apply: Some(|log, value| log.retention_ms = parsed(value)),
    },
    TopicConfig {
        name: "retention.bytes",
        config_type: ConfigType::Long,
        default: |log| log.retention_bytes.to_string(),
        validate: |value| integer_within(value, -1, i64::MAX),
        apply: Some(|log, value| log.retention_bytes = parsed(value)),
    },
    TopicConfig {
        name: "segment.bytes",
        config_type: ConfigType::Int,
        default: |log| log.segment_bytes.to_string(),
        validate: |value| integer_within(value, BLOCK_BYTES as i64, i64::from(i32::MAX)),
        apply: Some(|log, value| log.segment_bytes = parsed(value) as u64),
    },
    TopicConfig {
        name: "segment.ms",
        config_type: ConfigType::Long,
        default: |log| log.segment_ms.to_string(),
        validate: |value| integer_within(value, 1, i64::MAX),
        apply: Some(|log, value| log.segment_ms = parsed(value)),
    },
    TopicConfig {
        name: "flush.messages",
        config_type: ConfigType::Long,
        default: |log| match (log.flush, log.flush_messages) {
            (FlushPolicy::Always, _) => "1".into(),
            (_, Some(messages)) => messages.to_string(),
            _ => i64::MAX.to_string(),
        },
        validate: |value| integer_within(value, 1, i64::MAX),
        // 1: every record synced before it is acknowledged, as Kafka's flush in the append
        // path does; more: a sync once that many records wait for one.
        apply: Some(|log, value| match parsed(value) {
            1 => log.flush = FlushPolicy::Always,
            i64::MAX => log.flush_messages = None,
            messages => log.flush_messages = Some(messages as u64),
        }),
    },
    TopicConfig {
        name: "flush.ms",
        config_type: ConfigType::Long,
        default: |log| match log.flush {
            FlushPolicy::Always => "0".into(),
            FlushPolicy::Interval { interval, .. } => interval.as_millis().to_string(),
            FlushPolicy::Never => i64::MAX.to_string(),
        },
        validate: |value| integer_within(value, 0, i64::MAX),
        // Replaces the broker's interval; 0 syncs every write, as Always does. A topic
        // already syncing every record (flush.messages=1) stays so.
        apply: Some(|log, value| {
            // Kafka's default, Long.MAX_VALUE, means never by time; intervals are kept
            // within ten years so that no deadline overflows the clock.
            let ms = parsed(value).min(FLUSH_MS_NEVER);
            log.flush = match (log.flush, ms) {
                (FlushPolicy::Always, _) | (_, 0) => FlushPolicy::Always,
                (FlushPolicy::Never, FLUSH_MS_NEVER) => FlushPolicy::Never,
                (FlushPolicy::Interval { bytes, .. }, ms) => FlushPolicy::Interval {
                    interval: Duration::from_millis(ms as u64),
                    bytes,
                },
                (FlushPolicy::Never, ms) => FlushPolicy::Interval {
                    interval: Duration::from_millis(ms as u64),
                    bytes: u64::MAX,
                },
            }
        }),
    },
    TopicConfig {
        name: "max.message.bytes",
        config_type: ConfigType::Int,
        default: |log| log.batch_bytes_max.to_string(),
        validate: |value| integer_within(value, 0, i64::MAX),
        apply: Some(|log, value| log.batch_bytes_max = parsed(value) as usize),
    },
    TopicConfig {
        name: "message.timestamp.type",
        config_type: ConfigType::String,
        default: |log| {
            if log.log_append_time {
                "LogAppendTime".into()
            } else {
                "CreateTime".into()
            }
        },
        validate: |value| match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err("expected CreateTime or LogAppendTime".into()),
        },
        apply: Some(|log, value| log.log_append_time = value == "LogAppendTime"),
    },
    TopicConfig {
        name: "message.timestamp.before.max.ms",
        config_type: ConfigType::Long,
        default: |log| log.message_timestamp_before_max_ms.to_string(),
        validate: |value| integer_within(value, 0, i64::MAX),
        apply: Some(|log, value| log.message_timestamp_before_max_ms = parsed(value)),
    },
    TopicConfig {
        name: "message.timestamp.after.max.ms",
        config_type: ConfigType::Long,
        default: |log| log.message_timestamp_after_max_ms.to_string(),
        validate: |value| integer_within(value, 0, i64::MAX),
        apply: Some(|log, value| log.message_timestamp_after_max_ms = parsed(value)),
    },
    TopicConfig {
        name: MIN_INSYNC_REPLICAS,
        config_type: ConfigType::Int,
        default: |log| log.min_insync_replicas.to_string(),
        validate: |value| integer_within(value, 1, i64::from(i32::MAX)),
        apply: Some(|log, value| log.min_insync_replicas = parsed(value) as usize),
    },
    TopicConfig {
        name: UNCLEAN_LEADER_ELECTION_ENABLE,
        config_type: ConfigType::Boolean,
        default: |_| "false".into(),
        validate: validate_boolean,
        apply: None,
    },
    TopicConfig {
        name: VALIDATE_COMPRESSED_RECORDS,
        config_type: ConfigType::Boolean,
        default: |log| log.validate_compressed_records.to_string(),
        validate: validate_boolean,
        apply: Some(|log, value| log.validate_compressed_records = boolean(value) != Some(false)),
    },
    TopicConfig {
        name: WRITE_CACHING,
        config_type: ConfigType::Boolean,
        default: |log| log.write_caching.to_string(),
        validate: validate_boolean,
        apply: Some(|log, value| log.write_caching = boolean(value) == Some(true)),
    },
];

/// A boolean config's value; Kafka reads booleans without regard to case.
pub fn boolean(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn validate_boolean(value: &str) -> Result<(), String> {
    boolean(value)
        .map(|_| ())
        .ok_or_else(|| "expected true or false".into())
}

/// The table's entry for `name`.
pub fn topic_config(name: &str) -> Option<&'static TopicConfig> {
    TOPIC_CONFIGS.iter().find(|config| config.name == name)
}

/// Checks one topic config; `Err` holds a one-line reason.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    let config = topic_config(key).ok_or_else(|| format!("unknown topic config '{key}'"))?;
    (config.validate)(value).map_err(|reason| format!("{key}={value}: {reason}"))
}

/// The log settings of a topic: the broker's defaults with the topic's overrides. Configs
/// were validated when stored.
pub fn topic_log_config(defaults: &LogConfig, configs: &BTreeMap<String, String>) -> LogConfig {
    let mut log = defaults.clone();
    for (key, value) in configs {
        if let Some(apply) = topic_config(key).and_then(|config| config.apply) {
            apply(&mut log, value);
        }
    }
    log
}

/// The effective value of every topic config for DescribeConfigs: `(key, value, source)`.
/// `defaults` are the broker's log defaults in force; `inherited` says where the default of
/// a config the topic does not set comes from.
pub fn describe_topic_configs(
    defaults: &LogConfig,
    configs: &BTreeMap<String, String>,
    inherited: impl Fn(&str) -> ConfigSource,
) -> Vec<(String, String, ConfigSource)> {
    TOPIC_CONFIGS
        .iter()
        .map(|config| match configs.get(config.name) {
            Some(value) => (config.name.to_string(), value.clone(), ConfigSource::Topic),
            None => (
                config.name.to_string(),
                (config.default)(defaults),
                inherited(config.name),
            ),
        })
        .collect()
}

fn integer_within(value: &str, min: i64, max: i64) -> Result<(), String> {
    match value.parse::<i64>() {
        Ok(v) if v < min => Err(format!("expected an integer >= {min}")),
        Ok(v) if v > max => Err(format!("expected an integer <= {max}")),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("expected an integer >= {min}")),
    }
}

/// A validated integer config's value.
/// `flush.ms` at or above this (ten years) is "never by time".
const FLUSH_MS_NEVER: i64 = 10 * 365 * 24 * 3600 * 1000;

fn parsed(value: &str) -> i64 {
    value.parse().expect("validated when stored")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_configs_map_to_the_logs_flush_policy() {
        let defaults = LogConfig::default();
        let with = |pairs: &[(&str, &str)]| {
            let configs = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            topic_log_config(&defaults, &configs)
        };
        assert_eq!(with(&[("flush.messages", "1")]).flush, FlushPolicy::Always);
        let batched = with(&[("flush.messages", "500")]);
        assert_eq!(
            (batched.flush, batched.flush_messages),
            (defaults.flush, Some(500))
        );
        let FlushPolicy::Interval { bytes, .. } = defaults.flush else {
            panic!("the default is an interval");
        };
        assert_eq!(
            with(&[("flush.ms", "250")]).flush,
            FlushPolicy::Interval {
                interval: Duration::from_millis(250),
                bytes,
            }
        );
        assert_eq!(with(&[("flush.ms", "0")]).flush, FlushPolicy::Always);
        // Every record synced stays so whatever the interval says.
        let both = with(&[("flush.messages", "1"), ("flush.ms", "5000")]);
        assert_eq!(both.flush, FlushPolicy::Always);
        // Long.MAX_VALUE on a broker that never syncs by itself: still never.
        let never = LogConfig {
            flush: FlushPolicy::Never,
            ..LogConfig::default()
        };
        let configs = BTreeMap::from([("flush.ms".to_string(), i64::MAX.to_string())]);
        assert_eq!(topic_log_config(&never, &configs).flush, FlushPolicy::Never);
        let configs = BTreeMap::from([("flush.ms".to_string(), "1000".to_string())]);
        assert_eq!(
            topic_log_config(&never, &configs).flush,
            FlushPolicy::Interval {
                interval: Duration::from_secs(1),
                bytes: u64::MAX,
            }
        );
        // Kafka's default value on an interval broker: a valid, ten-year interval.
        let longest = with(&[("flush.ms", &i64::MAX.to_string())]);
        assert_eq!(longest.validate(), Ok(()));
        assert!((topic_config("flush.messages").unwrap().validate)("0").is_err());
        assert!((topic_config("flush.ms").unwrap().validate)("-1").is_err());
    }

    #[test]
    fn each_config_is_in_the_table_once() {
        let mut names: Vec<&str> = TOPIC_CONFIGS.iter().map(|config| config.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a config listed twice");
    }

    #[test]
    fn every_default_is_itself_valid_and_applies_back_unchanged() {
        let defaults = LogConfig::default();
        for config in TOPIC_CONFIGS {
            let value = (config.default)(&defaults);
            assert_eq!((config.validate)(&value), Ok(()), "{}={value}", config.name);
            if let Some(apply) = config.apply {
                let mut log = defaults.clone();
                apply(&mut log, &value);
                assert_eq!(
                    format!("{log:?}"),
                    format!("{defaults:?}"),
                    "{}",
                    config.name
                );
            }
        }
    }

    #[test]
    fn an_override_reaches_the_log_settings() {
        let configs = BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            ("segment.bytes".to_string(), "65536".to_string()),
            (VALIDATE_COMPRESSED_RECORDS.to_string(), "false".to_string()),
        ]);
        let log = topic_log_config(&LogConfig::default(), &configs);
        assert_eq!(log.retention_ms, 1000);
        assert_eq!(log.segment_bytes, 65536);
        assert!(!log.validate_compressed_records);
        assert!(!log.write_caching);
        // Booleans in any case, as Kafka reads them; anything else is refused.
        let cased = BTreeMap::from([
            (VALIDATE_COMPRESSED_RECORDS.to_string(), "False".to_string()),
            (WRITE_CACHING.to_string(), "TRUE".to_string()),
        ]);
        let log = topic_log_config(&LogConfig::default(), &cased);
        assert!(!log.validate_compressed_records);
        assert!(log.write_caching);
        assert!(validate_topic_config(WRITE_CACHING, "yes").is_err());
        assert!(validate_topic_config(VALIDATE_COMPRESSED_RECORDS, "True").is_ok());
        let compacted = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.cleanable.dirty.ratio".to_string(), "0.1".to_string()),
        ]);
        let log = topic_log_config(&LogConfig::default(), &compacted);
        assert!(log.cleanup_policy.compact && !log.cleanup_policy.delete);
        assert_eq!(log.min_cleanable_dirty_ratio, 0.1);
    }

    #[test]
    fn bad_values_and_unknown_names_are_refused_with_the_pair() {
        assert_eq!(
            validate_topic_config("retention.ms", "-2"),
            Err("retention.ms=-2: expected an integer >= -1".into())
        );
        assert!(validate_topic_config("segment.bytes", "99999999999").is_err());
        assert!(validate_topic_config("no.such.config", "1").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("delete.retention.ms", "-1").is_err());
    }
}
