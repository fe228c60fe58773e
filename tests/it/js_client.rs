//! KafkaJS (npm `kafkajs` 2.2.4), the most used pure-JavaScript Kafka client, against
//! Spindle, through `tests/interop/js` (issue 14): admin (createTopics, fetchTopicMetadata,
//! fetchTopicOffsets, fetchOffsets, listGroups, deleteTopics), a gzip producer, a consumer
//! group that commits and is resumed by a later member (nothing replayed), and seek.
//!
//! Needs Node.js and npm (`.ci/run` installs them); `npm ci` fetches KafkaJS from npm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{Broker, assert_checks, run_checks, temp_dir};

const KAFKAJS: &[(&str, &str)] = &[
    ("admin-createTopics", "PASS"),
    ("admin-fetchTopicMetadata", "PASS"),
    ("producer-gzip", "PASS"),
    ("admin-fetchTopicOffsets", "PASS"),
    ("consumer-group-commit-resume", "PASS"),
    ("admin-fetchOffsets", "PASS"),
    ("consumer-seek", "PASS"),
    ("admin-listGroups", "PASS"),
    ("admin-deleteTopics", "PASS"),
];

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/js")
}

#[test]
fn kafkajs_administers_produces_and_consumes_in_a_group() {
    let output = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(project_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("npm is missing ({e}): apt-get install -y nodejs npm (.ci/run does)")
        });
    assert!(
        output.status.success(),
        "npm ci failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = temp_dir("js-client");
    let broker = Broker::start(dir.path(), &[]);
    let mut command = Command::new("node");
    command
        .arg(project_dir().join("interop.js"))
        .arg(&broker.bootstrap);
    // Each check is bounded at 30 s by the program itself.
    let output = run_checks(command, Duration::from_secs(300));
    assert_checks(&output, KAFKAJS);
    let status = broker.stop();
    assert!(status.success(), "broker exit: {status:?}");
}
