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

#[test]
fn plot_overlays_runs_from_their_percentile_files_and_refuses_bad_ones() {
    let dir = std::env::temp_dir().join(format!("spindle-bench-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rows = |scale: f64| {
        let mut text = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        for (i, p) in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0].iter().enumerate() {
            text.push_str(&format!(
                "{:.3} {p:.12} {} 1.0\n",
                scale * (i + 1) as f64,
                i + 1
            ));
        }
        text
    };
    std::fs::write(dir.join("a.hgrm"), rows(1.0)).unwrap();
    std::fs::write(dir.join("b.hgrm"), rows(2.5)).unwrap();
    let out = dir.join("both.svg");
    let status = spindle_bench()
        .arg("plot")
        .arg(format!("spindle={}", dir.join("a.hgrm").display()))
        .arg(format!("kafka={}", dir.join("b.hgrm").display()))
        .arg("--out")
        .arg(&out)
        .args(["--latency-scale", "log"])
        .status()
        .expect("run");
    assert!(status.success());
    let svg = std::fs::read_to_string(&out).expect("the chart");
    assert!(
        svg.contains("spindle") && svg.contains("kafka"),
        "both in the legend"
    );

    // A bad flag: one line, status 2. A file that is not a distribution: status 1.
    let output = spindle_bench()
        .args(["plot", "no-label", "--out", "x.svg"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );
    std::fs::write(dir.join("junk.hgrm"), "not a histogram\n").unwrap();
    let output = spindle_bench()
        .arg("plot")
        .arg(format!("junk={}", dir.join("junk.hgrm").display()))
        .arg("--out")
        .arg(dir.join("junk.svg"))
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
