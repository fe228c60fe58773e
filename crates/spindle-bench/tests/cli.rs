//! The `spindle-bench` binary on its own: its commands, and one line plus exit status 2 for
//! a bad argument (the broker's `spindle bench` reaches the same binary; tests/it/bench_cli.rs
//! covers that path against a live broker).

use std::process::Command;

fn spindle_bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spindle-bench"))
}

#[test]
fn help_lists_the_three_workloads() {
    let output = spindle_bench().arg("--help").output().expect("run");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf8");
    for command in ["produce", "consume", "e2e"] {
        assert!(help.contains(command), "{command} in {help}");
    }
}

#[test]
fn a_bad_argument_gets_one_line_named_for_the_program_typed() {
    for (invoked_as, prefix) in [(None, "spindle-bench: "), (Some("spindle"), "spindle: ")] {
        let mut command = spindle_bench();
        command.args(["produce", "--engine", "kafka"]);
        if let Some(name) = invoked_as {
            command.env("SPINDLE_BENCH_AS", name);
        }
        let output = command.output().expect("run");
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8(output.stderr).expect("utf8");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(prefix), "{stderr}");
    }
}
