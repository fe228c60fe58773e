//! Interop with the clients Debian ships (librdkafka 2.0.2, which cannot parse tagged
//! fields it does not know): `kcat` produces a file and consumes it back with `-e`;
//! `python3-confluent-kafka` creates a topic, produces with acks=all and consumes, and
//! drives a consumer group (two members share a topic, commit, a third starts after them).
//!
//! Needs `kcat` and `python3-confluent-kafka` (`.ci/run` installs them with apt-get). A
//! missing tool fails the test: it is part of the suite, not optional.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{Broker, temp_dir};

fn require(program: &str, probe: &[&str]) {
    let found = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{program} is missing: apt-get install -y kcat python3-confluent-kafka (.ci/run does)"
    );
}

fn kcat(args: &[&str], stdin_file: Option<&Path>) -> String {
    let mut command = Command::new("kcat");
    command.args(args);
    if let Some(file) = stdin_file {
        command.stdin(std::fs::File::open(file).unwrap());
    }
    let output = command.output().expect("run kcat");
    assert!(
        output.status.success(),
        "kcat {args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn kcat_produces_a_file_and_consumes_it_back() {
    require("kcat", &["-V"]);
    let dir = temp_dir("kcat");
    let broker = Broker::start(dir.path(), &[]);
    let bootstrap = broker.bootstrap.as_str();
    let input = dir.path().join("input.txt");
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("key{}:line {i}", i % 13))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    // Keyed, delimiter ':'; the topic is auto-created with the default partition count.
    kcat(
        &[
            "-b",
            bootstrap,
            "-P",
            "-t",
            "from_kcat",
            "-K",
            ":",
            "-l",
            input.to_str().unwrap(),
        ],
        None,
    );
    let output = kcat(
        &[
            "-b",
            bootstrap,
            "-C",
            "-t",
            "from_kcat",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k:%s\n",
        ],
        None,
    );
    let mut consumed: Vec<&str> = output.lines().collect();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).collect();
    consumed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(consumed.len(), expected.len());
    assert_eq!(consumed, expected);
    // Metadata lists one broker per core.
    let metadata = kcat(&["-b", bootstrap, "-L"], None);
    assert!(metadata.contains("2 brokers"), "{metadata}");
}

/// Runs `tests/interop/SCRIPT BOOTSTRAP TOPIC` with Debian's python3 against a fresh
/// broker started with `broker_args`, at most 90 s; its standard output, after checking it
/// exited 0.
fn run_python_client(script: &str, topic: &str, broker_args: &[&str]) -> String {
    require("/usr/bin/python3", &["-c", "import confluent_kafka"]);
    let dir = temp_dir(topic);
    let broker = Broker::start(dir.path(), broker_args);
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(script);
    let output = Command::new("timeout")
        .arg("90")
        .arg("/usr/bin/python3")
        .arg(script)
        .arg(&broker.bootstrap)
        .arg(topic)
        .stderr(Stdio::inherit())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{topic}: python client failed ({:?}): {stdout}",
        output.status
    );
    stdout
}

#[test]
fn python_confluent_kafka_produces_and_consumes() {
    let stdout = run_python_client("confluent_kafka_client.py", "from_python", &[]);
    assert!(stdout.starts_with("OK 20000"), "{stdout}");
}

#[test]
fn python_confluent_kafka_consumer_group_shares_and_commits() {
    let stdout = run_python_client(
        "confluent_kafka_group.py",
        "group_from_python",
        &["--group-initial-rebalance-delay-ms", "500"],
    );
    assert!(stdout.starts_with("OK 4000"), "{stdout}");
}

#[test]
fn python_confluent_kafka_recovers_from_out_of_range_and_refused_transactions() {
    let stdout = run_python_client(
        "confluent_kafka_faults.py",
        "faults_from_python",
        &["--group-initial-rebalance-delay-ms", "100"],
    );
    assert!(stdout.starts_with("OK"), "{stdout}");
}

/// A Fetch partition's error reaches librdkafka at every Fetch version it speaks (the broker
/// advertises one version at most per run; the client takes the lower of its own and it).
#[test]
fn librdkafka_sees_offset_out_of_range_at_every_fetch_version() {
    for version in 4..=spindle::server::handlers::SERVED_APIS
        .iter()
        .find(|(key, _, _)| *key == kafka_protocol::messages::ApiKey::Fetch)
        .unwrap()
        .2
    {
        let max = version.to_string();
        let stdout = run_python_client(
            "confluent_kafka_fetch_errors.py",
            &format!("fetch_errors_v{version}"),
            &["--fault-fetch-version-max", &max],
        );
        assert!(stdout.starts_with("OK"), "Fetch v{version}: {stdout}");
    }
}
