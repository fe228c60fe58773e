//! The `spindle-bench` binary: `spindle-bench produce|consume|e2e|plot ...`. The broker's
//! `spindle bench ...` runs this program (found next to it), so the broker binary itself never
//! links librdkafka; it then sets `SPINDLE_BENCH_AS=spindle` so that messages name the command
//! the user typed.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spindle_bench::BenchCommand;
use spindle_bench::bars::BarsArgs;
use spindle_bench::compare::PlotArgs;

#[derive(Parser, Debug)]
#[command(
    name = "spindle-bench",
    version,
    about = "Load generators for any Kafka-compatible broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Bench(BenchCommand),
    /// Overlay the latency percentile curves of several runs (their --percentiles-out
    /// files) on one SVG chart.
    Plot(PlotArgs),
    /// Draw the runs perf/peer-compare.sh records (LABEL.tsv) as bars per case and broker,
    /// each run a dot, the whisker its spread.
    Bars(BarsArgs),
}

fn main() -> ExitCode {
    // `spindle` when reached as `spindle bench`, so errors read as the command typed.
    let (program, command_path) = match std::env::var("SPINDLE_BENCH_AS") {
        Ok(name) if name == "spindle" => ("spindle", "spindle bench"),
        _ => ("spindle-bench", "spindle-bench"),
    };
    let cli = match Cli::try_parse_from(
        std::iter::once(command_path.into()).chain(std::env::args_os().skip(1)),
    ) {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(program, error),
    };
    let command = match cli.command {
        Command::Bench(command) => command,
        Command::Plot(args) => return plot(program, command_path, &args),
        Command::Bars(args) => return bars(program, command_path, &args),
    };
    if let Err(reason) = command.validate() {
        eprintln!(
            "{program}: {reason} (see {command_path} {} --help)",
            command.name()
        );
        return ExitCode::from(2);
    }
    match command.run() {
        Ok(report) => {
            println!("{}", report.human());
            if command.common().json {
                println!("{}", report.json());
            }
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("{program}: bench: {reason}");
            ExitCode::from(1)
        }
    }
}

/// `plot`: a bad flag is one line and status 2, a file that cannot be read or written 1.
fn plot(program: &str, command_path: &str, args: &PlotArgs) -> ExitCode {
    if let Err(reason) = args.validate() {
        eprintln!("{program}: {reason} (see {command_path} plot --help)");
        return ExitCode::from(2);
    }
    match args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{program}: plot: {reason}");
            ExitCode::from(1)
        }
    }
}

/// `bars`: as `plot`, a bad flag is status 2, an unreadable or unwritable file 1.
fn bars(program: &str, command_path: &str, args: &BarsArgs) -> ExitCode {
    if let Err(reason) = args.validate() {
        eprintln!("{program}: {reason} (see {command_path} bars --help)");
        return ExitCode::from(2);
    }
    match args.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{program}: bars: {reason}");
            ExitCode::from(1)
        }
    }
}

/// Help and version go to stdout as clap prints them; a usage error becomes one line on
/// stderr and exit status 2, as operators' scripts expect.
fn report_usage_error(program: &str, error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(2)
        }
        _ => {
            let message = error.to_string();
            let summary: Vec<&str> = message
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
                .collect();
            eprintln!(
                "{program}: {} (see {program} --help)",
                summary.join(" ").trim_start_matches("error: ")
            );
            ExitCode::from(2)
        }
    }
}
