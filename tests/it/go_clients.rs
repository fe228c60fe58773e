//! The two widely used Go Kafka clients against Spindle, through `tests/interop/go` (issue
//! 14): franz-go (`github.com/twmb/franz-go`, the module's root program) and IBM sarama
//! (`./sarama`). Each produces with its default partitioner and every compression codec,
//! runs a consumer group that commits and is resumed by a later member (nothing replayed),
//! and drives its admin client (kadm; sarama's ClusterAdmin). Every call is bounded in time.
//!
//! Needs Go (`.ci/run` installs it); the module proxy serves the client on the first build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{Broker, assert_checks, run_checks, temp_dir};

const FRANZ_GO: &[(&str, &str)] = &[
    ("produce-consume-none", "PASS"),
    ("produce-consume-gzip", "PASS"),
    ("produce-consume-snappy", "PASS"),
    ("produce-consume-lz4", "PASS"),
    ("produce-consume-zstd", "PASS"),
    ("group-commit-resume", "PASS"),
    ("kadm-CreateTopic", "PASS"),
    ("kadm-ListTopics", "PASS"),
    ("kadm-BrokerMetadata", "PASS"),
    ("kadm-ListEndOffsets", "PASS"),
    ("kadm-CommitAndFetchOffsets", "PASS"),
    ("kadm-ListGroups", "PASS"),
    ("kadm-DescribeTopicConfigs", "PASS"),
    ("kadm-DeleteTopic", "PASS"),
];

const SARAMA: &[(&str, &str)] = &[
    ("produce-consume-none", "PASS"),
    ("produce-consume-gzip", "PASS"),
    ("produce-consume-snappy", "PASS"),
    ("produce-consume-lz4", "PASS"),
    ("produce-consume-zstd", "PASS"),
    ("group-commit-resume", "PASS"),
    ("admin-CreateTopic", "PASS"),
    ("admin-ListTopics", "PASS"),
    ("admin-DescribeTopics", "PASS"),
    ("admin-DescribeCluster", "PASS"),
    ("admin-CreatePartitions", "PASS"),
    ("admin-DescribeConfig", "PASS"),
    ("admin-ListConsumerGroups", "PASS"),
    ("admin-ListConsumerGroupOffsets", "PASS"),
    ("admin-DeleteTopic", "PASS"),
];

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go")
}

/// Builds the Go program in `package` (relative to the module), runs it against a fresh
/// broker and checks its results against `expected`.
fn run_go_program(package: &str, expected: &[(&str, &str)]) {
    let dir = temp_dir("go-clients");
    let binary = dir.path().join("interop");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(package)
        .current_dir(project_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("go is missing ({e}): apt-get install -y golang (.ci/run does)")
        });
    assert!(
        output.status.success(),
        "go build {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut command = Command::new(&binary);
    command.arg(&broker.bootstrap);
    // Each check is bounded at 30 s by the program itself.
    let output = run_checks(command, Duration::from_secs(300));
    assert_checks(&output, expected);
    let status = broker.stop();
    assert!(status.success(), "broker exit: {status:?}");
}

#[test]
fn franz_go_produces_consumes_in_a_group_and_administers() {
    run_go_program(".", FRANZ_GO);
}

#[test]
fn sarama_produces_consumes_in_a_group_and_administers() {
    run_go_program("./sarama", SARAMA);
}
