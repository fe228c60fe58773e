//! The `spindle` command line. Runs on the main thread; subcommands that need executors
//! start their own.
//!
//! `serve` (also what no subcommand means) runs the broker; `cluster up` starts a local
//! cluster of nodes; `top` watches a broker's metrics endpoint; `topic`, `group` and
//! `cluster info` administer any Kafka-compatible cluster (`admin`); `dump-log` is a
//! read-only check of a partition directory (like Kafka's DumpLogSegments).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod admin;
mod cluster_up;
mod top;

use clap::{Parser, Subcommand};
use spindle::config::{BrokerConfig, ServeArgs};
use spindle::storage::log::{LOG_SUFFIX, parse_segment_file_name, scan_segment_file};
use spindle::storage::read_only::ReadOnlyFile;
use spindle::storage::recovery_point::{RECOVERY_POINT_FILE_NAMES, RecoveryPoint};
use spindle_protocol::record_batch::RecordBatchHeader;

#[derive(Parser, Debug)]
#[command(
    name = "spindle",
    version,
    about = "A Kafka-compatible streaming broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// `spindle` with no subcommand: `serve` with every default.
#[derive(Parser, Debug)]
struct ServeDefaults {
    #[command(flatten)]
    args: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the broker (the default): one Kafka broker per core, data under --data-dir.
    Serve(Box<ServeArgs>),
    /// Load generators for any Kafka-compatible broker: runs `spindle-bench` (built with
    /// the workspace, found next to this binary), so the broker never links librdkafka.
    #[command(disable_help_flag = true)]
    Bench {
        /// `produce`, `consume` or `e2e` and their flags (`spindle bench --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
    /// A local cluster: `spindle cluster up --nodes 3` starts three nodes on 127.0.0.1.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// A live view of a broker's metrics endpoint: requests/s and p99 per API, traffic per
    /// topic, connections, refreshed every second.
    Top(top::TopArgs),
    /// Topics of any Kafka-compatible cluster: create, list, describe, delete,
    /// add-partitions, alter-config.
    Topic {
        #[command(subcommand)]
        command: admin::TopicCommand,
        #[command(flatten)]
        connection: admin::Connection,
    },
    /// Consumer groups: list, describe (members, committed offsets, lag), delete.
    Group {
        #[command(subcommand)]
        command: admin::GroupCommand,
        #[command(flatten)]
        connection: admin::Connection,
    },
    /// Prints a completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `spindle completions bash > /etc/bash_completion.d/spindle`.
    Completions { shell: clap_complete::Shell },
    /// Reads every segment of a partition directory and checks each batch (framing, CRC-32C,
    /// offset continuity) without modifying anything. Exits 1 if any segment has bytes
    /// after its last valid batch that are not zeros (a torn tail or corruption).
    DumpLog {
        /// The partition directory (holding 00000000000000000000.log ...).
        #[arg(long)]
        dir: PathBuf,
        /// Print one line per batch.
        #[arg(long)]
        batches: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Starts nodes that form one cluster, prints their bootstrap addresses, and stops them
    /// all on Ctrl-C.
    Up(cluster_up::ClusterUpArgs),
    /// The cluster's id, controller and brokers.
    Info(admin::Connection),
    /// A broker's configs: get [KEY...], set KEY=VALUE...
    Config {
        #[command(subcommand)]
        command: admin::cluster::ConfigCommand,
        #[command(flatten)]
        connection: admin::Connection,
    },
    /// Client quotas: describe [--name TYPE=NAME|--default TYPE|--any TYPE], alter
    /// (--name TYPE=NAME|--default TYPE) --add KEY=VALUE --delete KEY.
    Quotas {
        #[command(subcommand)]
        command: admin::quotas::QuotasCommand,
        #[command(flatten)]
        connection: admin::Connection,
    },
    /// Partition moves: move TOPIC -p PARTITION:BROKER,..., move-status [TOPIC],
    /// move-cancel TOPIC [-p PARTITION].
    Partitions {
        #[command(subcommand)]
        command: admin::partitions::PartitionsCommand,
        #[command(flatten)]
        connection: admin::Connection,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line, as operators' scripts expect.
            let message = error.to_string();
            let summary: Vec<&str> = message
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty() && !line.starts_with("Usage:"))
                .collect();
            let summary = summary.join(" ");
            eprintln!(
                "spindle: {} (see spindle --help)",
                summary.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(Box::new(ServeDefaults::parse_from(["spindle"]).args)));
    match command {
        Command::Serve(args) => {
            init_tracing();
            let config = match BrokerConfig::from_args(&args) {
                Ok(config) => config,
                Err(reason) => {
                    eprintln!("spindle: {reason} (see spindle serve --help)");
                    return ExitCode::from(2);
                }
            };
            match spindle::server::serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(reason) => {
                    eprintln!("spindle: {reason}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench { args } => run_bench(args),
        Command::Cluster(ClusterCommand::Up(args)) => {
            init_tracing();
            cluster_up::cluster_up(&args)
        }
        Command::Cluster(ClusterCommand::Info(connection)) => {
            admin::cluster::cluster_info(&connection)
        }
        Command::Cluster(ClusterCommand::Config {
            command,
            connection,
        }) => admin::cluster::config(&command, &connection),
        Command::Cluster(ClusterCommand::Quotas {
            command,
            connection,
        }) => admin::quotas::quotas(&command, &connection),
        Command::Cluster(ClusterCommand::Partitions {
            command,
            connection,
        }) => admin::partitions::partitions(&command, &connection),
        Command::Top(args) => top::top(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "spindle",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Topic {
            command,
            connection,
        } => admin::topic::run_command(&command, &connection),
        Command::Group {
            command,
            connection,
        } => admin::print(
            &connection.format,
            admin::group::run(&command, &connection.brokers),
        ),
        Command::DumpLog { dir, batches } => match dump_log(&dir, batches) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(error) => {
                eprintln!("spindle: {}: {error}", dir.display());
                ExitCode::from(2)
            }
        },
    }
}

/// Replaces this process with `spindle-bench`, next to this binary (else on `PATH`).
fn run_bench(args: Vec<std::ffi::OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("spindle-bench"))
        .filter(|path| path.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("spindle-bench"));
    let error = std::process::Command::new(&program)
        .args(args)
        .env("SPINDLE_BENCH_AS", "spindle")
        .exec();
    eprintln!(
        "spindle: bench: cannot run {}: {error} (build it with cargo build --release -p spindle-bench)",
        program.display()
    );
    ExitCode::from(1)
}

/// Logs to stderr; `RUST_LOG` (e.g. `spindle=debug`) overrides the default `info`.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (disk full, stderr a closed pipe) is dropped:
        // the fallback would report it with eprintln!, which panics on the same stderr.
        .log_internal_errors(false)
        .init();
}

/// Prints a summary per segment; returns whether every segment was clean.
fn dump_log(dir: &Path, print_batches: bool) -> std::io::Result<bool> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()
                .and_then(|name| parse_segment_file_name(name, LOG_SUFFIX))
        })
        .collect();
    bases.sort_unstable();
    if bases.is_empty() {
        println!("{}: no segments", dir.display());
        return Ok(true);
    }
    let mut clean = true;
    let mut log_end = 0;
    for base in bases {
        let path = dir.join(format!("{base:020}{LOG_SUFFIX}"));
        let file = ReadOnlyFile::open(&path)?;
        let (mut batch_count, mut record_count, mut max_timestamp) = (0u64, 0u64, -1i64);
        // The same scan recovery runs, over plain blocking reads.
        let scan =
            futures_lite::future::block_on(scan_segment_file(&file, base, |position, header| {
                if print_batches {
                    print_batch(position, header);
                }
                batch_count += 1;
                record_count += header.records_count.max(0) as u64;
                max_timestamp = max_timestamp.max(header.max_timestamp);
            }))
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        log_end = scan.next_offset;
        println!(
            "segment {base}: {batch_count} batches, {record_count} records, offsets {base}..{}, {} valid bytes of {}, max timestamp {max_timestamp}",
            scan.next_offset - 1,
            scan.valid_bytes,
            scan.file_bytes
        );
        if scan.valid_bytes < scan.file_bytes {
            let what = if scan.tail_is_zeros {
                "zeros (preallocated, normal)"
            } else {
                "NOT zeros: torn or corrupt"
            };
            println!(
                "  {} bytes after the last valid batch: {what}; stopped because: {}",
                scan.file_bytes - scan.valid_bytes,
                scan.stop_reason.as_deref().unwrap_or("end")
            );
            clean &= scan.tail_is_zeros;
        }
    }
    // Everything below the recovery point was durable: a log that ends before it lost
    // acknowledged data.
    let slots = RECOVERY_POINT_FILE_NAMES.map(|name| {
        std::fs::read(dir.join(name))
            .ok()
            .and_then(|bytes| RecoveryPoint::decode(&bytes))
    });
    match RecoveryPoint::newest(slots) {
        Some(point) if point.offset > log_end => {
            println!(
                "recovery point {}: NOT reached: offsets {log_end}..{} were durable and are missing or unreadable",
                point.offset, point.offset
            );
            clean = false;
        }
        Some(point) => println!("recovery point {}", point.offset),
        None => println!("no recovery point"),
    }
    Ok(clean)
}

fn print_batch(position: u64, header: &RecordBatchHeader) {
    println!(
        "  position {position} offsets {}..{} records {} bytes {} max_timestamp {} compression {} producer_id {} epoch {}",
        header.base_offset,
        header.last_offset(),
        header.records_count,
        header.size_bytes(),
        header.max_timestamp,
        header.compression(),
        header.producer_id,
        header.partition_leader_epoch
    );
}
