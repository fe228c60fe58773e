//! Kafka's own Java client (`org.apache.kafka:kafka-clients` 4.4.0) against Spindle, through
//! `tests/interop/java` (issue 14): the default producer (idempotent, acks=all) with every
//! compression codec, classic consumer groups with the eager and the cooperative-sticky
//! assignor (two members share, commit, a later member resumes), static membership (a
//! member restarted under its group.instance.id takes its partitions back with no
//! rebalance of the others), Kafka Streams' word count (at_least_once, through the
//! repartition and compacted changelog topics Streams creates), and the AdminClient calls
//! people script with.
//! `group.protocol=consumer` (KIP-848) is not served yet and must be refused cleanly, which
//! the client reports as UnsupportedVersionException. Every call is bounded in time, so an
//! unserved one shows as a failed check, never a hang.
//!
//! Needs Maven and a JDK 17 (`.ci/run` installs them); Maven fetches the client from Maven
//! Central into `~/.m2` on its first run. A missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{Broker, assert_checks, maven, run_checks, temp_dir};

/// Every check the program runs, and how it must end.
const EXPECTED: &[(&str, &str)] = &[
    ("produce-consume-none", "PASS"),
    ("produce-consume-gzip", "PASS"),
    ("produce-consume-snappy", "PASS"),
    ("produce-consume-lz4", "PASS"),
    ("produce-consume-zstd", "PASS"),
    ("group-eager", "PASS"),
    ("group-cooperative-sticky", "PASS"),
    ("group-static-membership", "PASS"),
    ("streams-word-count", "PASS"),
    ("admin-createTopics", "PASS"),
    ("admin-describeTopics", "PASS"),
    ("admin-describeCluster", "PASS"),
    ("admin-listOffsets-earliest", "PASS"),
    ("admin-listOffsets-latest", "PASS"),
    ("admin-listOffsets-by-timestamp", "PASS"),
    ("admin-listOffsets-max-timestamp", "PASS"),
    ("admin-alterConsumerGroupOffsets", "PASS"),
    ("admin-listConsumerGroupOffsets", "PASS"),
    ("admin-listConsumerGroups", "PASS"),
    ("admin-describeConsumerGroups", "PASS"),
    ("admin-deleteConsumerGroupOffsets", "PASS"),
    ("admin-describeConfigs", "PASS"),
    ("admin-incrementalAlterConfigs", "PASS"),
    ("admin-brokerConfigs", "PASS"),
    ("admin-deleteRecords", "PASS"),
    ("admin-clientQuotas", "PASS"),
    ("admin-partitionReassignments", "PASS"),
    ("admin-createPartitions", "PASS"),
    ("admin-deleteTopics", "PASS"),
    // KIP-848 is not served: ApiVersions does not list ConsumerGroupHeartbeat, and the
    // client refuses before it sends anything.
    (
        "group-protocol-consumer",
        "FAIL group-protocol-consumer: UnsupportedVersionException",
    ),
];

fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/java")
}

fn build() {
    maven(
        &project_dir(),
        &[
            "package",
            "dependency:copy-dependencies",
            "-DoutputDirectory=target/lib",
            "-DincludeScope=runtime",
        ],
    );
}

#[test]
fn kafkas_java_client_produces_consumes_in_groups_and_administers() {
    build();
    let dir = temp_dir("java-client");
    let broker = Broker::start(dir.path(), &[]);
    let classpath = format!(
        "{}:{}",
        project_dir().join("target/classes").display(),
        project_dir().join("target/lib/*").display()
    );
    let mut command = Command::new("java");
    command
        .args(["-cp", &classpath, "io.spindle.interop.Interop"])
        .arg(&broker.bootstrap);
    // Each check is bounded at about 20 s by the program itself; all of them well inside this.
    let output = run_checks(command, Duration::from_secs(240));
    assert_checks(&output, EXPECTED);
    let status = broker.stop();
    assert!(status.success(), "broker exit: {status:?}");
}
