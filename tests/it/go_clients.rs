//! franz-go (`github.com/twmb/franz-go`), a widely used Go Kafka client, against Spindle,
//! through `tests/interop/go` (issue 14): produce with its default partitioner and every
//! compression codec, a consumer group that commits and is resumed by a later member
//! (nothing replayed), and its admin client kadm. Every call is bounded in time.
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

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/go")
}

#[test]
fn franz_go_produces_consumes_in_a_group_and_administers() {
    let dir = temp_dir("go-clients");
    let binary = dir.path().join("franz-interop");
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(project_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("go is missing ({e}): apt-get install -y golang (.ci/run does)")
        });
    assert!(
        output.status.success(),
        "go build failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let broker = Broker::start(&dir.path().join("data"), &[]);
    let mut command = Command::new(&binary);
    command.arg(&broker.bootstrap);
    // Each check is bounded at 30 s by the program itself.
    let output = run_checks(command, Duration::from_secs(240));
    assert_checks(&output, FRANZ_GO);
    let status = broker.stop();
    assert!(status.success(), "broker exit: {status:?}");
}
