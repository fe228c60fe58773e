//! The `spindle` binary: argument errors and the read-only `dump-log` check.

use crate::common::temp_dir;
use std::io::Write;
use std::process::Command;

use bytes::BytesMut;
use spindle::runtime::run_local;
use spindle::storage::{DmaStorage, LogConfig, PartitionLog};
use spindle_protocol::record_batch::build_batch;

fn spindle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spindle"))
}

/// Runs `spindle dump-log --dir DIR`: its exit code and standard output.
fn dump_log(dir: &std::path::Path) -> (Option<i32>, String) {
    let output = spindle()
        .args(["dump-log", "--dir"])
        .arg(dir)
        .output()
        .expect("run spindle");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("utf8"),
    )
}

#[test]
fn a_bad_argument_gets_one_line_and_a_non_zero_exit() {
    for args in [
        &["--no-such-flag"][..],
        &["dump-log"][..],
        &["no-such-command"][..],
        &["serve", "--partition-cache-bytes", "5"][..],
        &["serve", "--quorum", "0@127.0.0.1"][..],
        &["serve", "--node-id", "1", "--quorum", "0@127.0.0.1:9300"][..],
        &["serve", "--node-id", "9000"][..],
        &["serve", "--default-replication-factor", "2"][..],
        &["serve", "--min-insync-replicas", "0"][..],
        &["serve", "--offsets-topic-partitions", "0"][..],
        &["serve", "--offsets-topic-replication-factor", "2"][..],
        &["serve", "--leader-imbalance-check-interval-ms", "5"][..],
        &["serve", "--auto-leader-rebalance-enable", "maybe"][..],
        &["bench", "produce", "--engine", "kafka"][..],
    ] {
        let output = spindle().args(args).output().expect("run spindle");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).expect("utf8");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("spindle: "), "{stderr}");
    }
    let output = spindle()
        .args(["dump-log", "--dir", "/no/such/dir"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn dump_log_reports_segments_and_flags_a_corrupt_tail() {
    let temp = temp_dir("cli");
    let dir = temp.path().join("orders-3");
    let log_dir = dir.clone();
    run_local(temp.path(), async move {
        let config = LogConfig {
            segment_bytes: 8192,
            batch_bytes_max: 4096,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(DmaStorage, &log_dir, config)
            .await
            .expect("open");
        for index in 0..40 {
            let value = vec![b'v'; 300 + index];
            let batch = build_batch(1_000 + index as i64, &[(None, &value), (Some(b"k"), b"x")]);
            log.append(BytesMut::from(batch.as_slice()))
                .await
                .expect("append");
        }
        log.close().await.expect("close");
    });
    let (code, stdout) = dump_log(&dir);
    assert_eq!(code, Some(0), "{stdout}");
    let batches: u64 = stdout
        .lines()
        .filter(|line| line.starts_with("segment "))
        .map(|line| {
            line.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(batches, 40, "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.starts_with("segment ")).count() > 1,
        "{stdout}"
    );

    // Garbage after the last batch of the active segment: reported, exit 1.
    let mut last = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect::<Vec<_>>();
    last.sort();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(last.last().unwrap())
        .unwrap();
    file.write_all(&[0xAB; 100]).unwrap();
    let (code, stdout) = dump_log(&dir);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("NOT zeros"), "{stdout}");
}

#[test]
fn dump_log_flags_durable_offsets_missing_below_the_recovery_point() {
    let temp = temp_dir("cli");
    let dir = temp.path().join("orders-4");
    let log_dir = dir.clone();
    run_local(temp.path(), async move {
        let log = PartitionLog::open(DmaStorage, &log_dir, LogConfig::default())
            .await
            .expect("open");
        for index in 0..10 {
            let batch = build_batch(1_000 + index, &[(None, b"value")]);
            log.append(BytesMut::from(batch.as_slice()))
                .await
                .expect("append");
        }
        log.close().await.expect("close");
    });
    let (code, stdout) = dump_log(&dir);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("recovery point 10"), "{stdout}");
    // The last batches vanish at a batch boundary (the file system lost them): every
    // remaining batch is intact, but offsets the log had made durable are gone.
    let segment = dir.join("00000000000000000000.log");
    let bytes = std::fs::read(&segment).unwrap();
    let batch_bytes = bytes.len() / 10;
    std::fs::write(&segment, &bytes[..batch_bytes * 7]).unwrap();
    let (code, stdout) = dump_log(&dir);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("offsets 7..10"), "{stdout}");
}
