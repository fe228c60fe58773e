//! The admin CLI (issue 16): `spindle topic|group|cluster info` against a running broker,
//! each verb's effect checked through the broker and its output through both formats
//! (records through `topic produce|consume` and `group seek` too);
//! bad arguments get one line and exit 2, refusals and unreachable brokers exit 1.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use serde_json::Value;
use spindle_protocol::record_batch::build_batch;

use crate::common::{Broker, RawClient, produce_records, temp_dir};
use crate::metrics::commit;

fn spindle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .output()
        .expect("the spindle binary runs")
}

/// Runs an admin command against `brokers`: `(exit code, stdout, stderr)`.
fn admin(brokers: &str, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--brokers", brokers]);
    let output = spindle(&all);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The JSON document an admin command printed.
fn json(brokers: &str, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, stdout, stderr) = admin(brokers, &all);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

#[test]
fn topics_groups_and_the_cluster_are_administered_from_the_command_line() {
    let dir = temp_dir("admin-cli");
    let broker = Broker::start(dir.path(), &["--cores", "2"]);
    let brokers = broker.bootstrap.as_str();

    let (code, stdout, _) = admin(
        brokers,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "2",
            "-c",
            "cleanup.policy=compact",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(stdout, "TOPIC   RESULT\norders  OK\n");
    let (code, stdout, _) = admin(brokers, &["topic", "create", "orders"]);
    assert_eq!(code, 1, "a refused topic fails the command");
    assert!(stdout.contains("TopicAlreadyExists"), "{stdout}");

    let described = json(brokers, &["topic", "describe", "orders"]);
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(described["configs"]["cleanup.policy"]["value"], "compact");
    assert_eq!(described["configs"]["cleanup.policy"]["source"], "topic");

    let (code, _, _) = admin(
        brokers,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "retention.ms=1000",
            "--delete",
            "cleanup.policy",
        ],
    );
    assert_eq!(code, 0);
    let described = json(brokers, &["topic", "describe", "orders"]);
    assert_eq!(described["configs"]["retention.ms"]["value"], "1000");
    assert_eq!(described["configs"]["cleanup.policy"]["source"], "default");
    let (code, _, _) = admin(
        brokers,
        &["topic", "add-partitions", "orders", "--num", "1"],
    );
    assert_eq!(code, 0);

    // Ten records in orders-0 and a group that committed 4 of them: lag 6.
    let mut client = RawClient::connect(&broker.core_address(0));
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(Some(b"k"), b"v"); 10];
    let batch = Bytes::from(build_batch(1_700_000_000_000, &records));
    let leader = json(brokers, &["topic", "describe", "orders"])["partitions"][0]["leader"]
        .as_i64()
        .expect("a leader");
    let mut client_of_leader = RawClient::connect(&broker.core_address(leader as usize));
    assert_eq!(
        produce_records(&mut client_of_leader, "orders", 0, batch, -1).0,
        0
    );
    let described = json(brokers, &["topic", "describe", "orders"]);
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(described["partitions"][0]["high_watermark"], 10);
    let coordinator = {
        use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
        let response: FindCoordinatorResponse = client.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(
                kafka_protocol::protocol::StrBytes::from_static_str("billing"),
            ),
        );
        format!("127.0.0.1:{}", response.port)
    };
    commit(
        &mut RawClient::connect(&coordinator),
        "billing",
        "orders",
        4,
    );
    let groups = json(brokers, &["group", "list"]);
    assert!(
        groups
            .as_array()
            .expect("a list")
            .iter()
            .any(|g| g["group"] == "billing"),
        "{groups}"
    );
    let group = json(brokers, &["group", "describe", "billing"]);
    let offsets = group["offsets"].as_array().expect("offsets");
    assert_eq!(offsets.len(), 1, "{group}");
    assert_eq!(offsets[0]["committed_offset"], 4);
    assert_eq!(offsets[0]["log_end_offset"], 10);
    assert_eq!(offsets[0]["lag"], 6);
    let (code, stdout, _) = admin(brokers, &["group", "describe", "billing"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("LAG") && stdout.contains("orders"),
        "{stdout}"
    );
    let (code, _, _) = admin(brokers, &["group", "delete", "billing"]);
    assert_eq!(code, 0);

    // Records in and out: lines as records, a template, a group's offsets, a seek.
    assert_eq!(
        admin(brokers, &["topic", "create", "lines", "-p", "1"]).0,
        0
    );
    let mut producer = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "topic",
            "produce",
            "lines",
            "--separator",
            ":",
            "--format",
            "json",
        ])
        .args(["--brokers", brokers])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spindle runs");
    producer
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"k1:v1\nk2:v2\nk1:v3\n")
        .expect("lines written");
    let produced = producer.wait_with_output().expect("produce ends");
    assert!(produced.status.success());
    let produced: Value = serde_json::from_slice(&produced.stdout).expect("json");
    assert_eq!(produced[0]["records"], 3);
    assert_eq!(produced[0]["first_offset"], 0);
    let consume = |args: &[&str]| {
        let mut all = vec!["topic", "consume", "lines"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = admin(brokers, &all);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        stdout
    };
    assert_eq!(
        consume(&["--format", "%k=%v@%o\\n"]),
        "k1=v1@0\nk2=v2@1\nk1=v3@2\n"
    );
    assert_eq!(consume(&["-n", "1", "-g", "readers"]), "v1\n");
    let group = json(brokers, &["group", "describe", "readers"]);
    assert_eq!(group["offsets"][0]["committed_offset"], 1);
    assert_eq!(group["offsets"][0]["lag"], 2);
    assert_eq!(
        consume(&["-g", "readers"]),
        "v2\nv3\n",
        "on from the committed offset"
    );
    assert_eq!(
        admin(
            brokers,
            &["group", "seek", "readers", "--topic", "lines", "--to", "1"]
        )
        .0,
        0
    );
    assert_eq!(consume(&["-g", "readers", "-n", "1"]), "v2\n");
    assert_eq!(consume(&["-o", "end"]), "");
    assert_eq!(
        consume(&["-o", "@99999999999999"]),
        "",
        "no record that late"
    );
    let (code, _, stderr) = admin(brokers, &["topic", "list", "--format", "%v"]);
    assert_eq!(code, 2, "{stderr}");

    // A broker's configs: read; a dynamic one set cluster-wide and read back; a start-time
    // one refused, in one line.
    let configs = json(brokers, &["cluster", "config", "get", "log.segment.bytes"]);
    assert_eq!(
        configs,
        serde_json::json!({"log.segment.bytes": "1073741824"})
    );
    let (code, stdout, _) = admin(
        brokers,
        &["cluster", "config", "set", "log.retention.ms=3600000"],
    );
    assert_eq!(code, 0, "{stdout}");
    let configs = json(brokers, &["cluster", "config", "get", "log.retention.ms"]);
    assert_eq!(configs, serde_json::json!({"log.retention.ms": "3600000"}));
    let (_, table, _) = admin(brokers, &["cluster", "config", "get", "log.retention.ms"]);
    assert!(table.contains("dynamic-cluster-default"), "{table}");
    let (code, stdout, _) = admin(brokers, &["cluster", "config", "set", "num.partitions=5"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("InvalidRequest"), "{stdout}");

    let info = json(brokers, &["cluster", "info"]);
    assert_eq!(info["brokers"].as_array().map(Vec::len), Some(2));
    let (code, _, _) = admin(brokers, &["topic", "delete", "orders", "lines"]);
    assert_eq!(code, 0);
    assert_eq!(json(brokers, &["topic", "list"]), Value::Array(Vec::new()));

    // Bad arguments: one line, exit 2. Refusals and unreachable brokers: one line, exit 1.
    for bad in [
        &["topic", "create"][..],
        &["topic", "create", "x", "-c", "novalue"],
        &["topic", "list", "--format", "yaml"],
    ] {
        let output = spindle(bad);
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .lines()
                .count(),
            1,
            "{bad:?}"
        );
    }
    let (code, _, stderr) = admin(brokers, &["topic", "alter-config", "orders"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (code, _, stderr) = admin("127.0.0.1:1", &["topic", "list"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("spindle: cannot reach 127.0.0.1:1"),
        "{stderr}"
    );
    broker.stop();
}

#[test]
fn shell_completions_know_the_admin_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let output = spindle(&["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        for word in ["topic", "consume", "alter-config", "seek"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let output = spindle(&["completions", "tcsh"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a bad argument"
    );
}
