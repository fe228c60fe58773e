//! `spindle bench`: load generators that speak the Kafka protocol to any Kafka-compatible
//! broker. Runs on plain threads of the client process (not on the broker's executors).
//!
//! So far: `produce` with the native engine (pre-built record batches, one connection per
//! partition leader per producer, pipelined requests). The rdkafka engine, `consume`, `e2e`
//! and plots arrive with the rest of issue 5.

pub mod e2e;
pub mod native;
pub mod rate;
pub mod stats;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all")]
    All,
}

impl Acks {
    pub fn code(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Produce as fast as allowed and report messages/s, MB/s and request latency.
    Produce(ProduceArgs),
    /// Read a topic from its earliest offsets to its end and report messages/s, MB/s and
    /// Fetch latency.
    Consume(ConsumeArgs),
    /// Produce and consume at once; each record carries its send time and the consumer
    /// records produce-to-consume latency.
    E2e(ProduceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// Bootstrap broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Stop after this many messages (0: read every partition up to its high watermark
    /// as it was when the run started).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,
    /// Passes over the topic (a second pass reads what the first left in the broker's
    /// memory, if it fits).
    #[arg(long, default_value_t = 1)]
    pub passes: u32,
    /// Fetch max_bytes (partition_max_bytes is the same).
    #[arg(long, default_value_t = 16 << 20)]
    pub fetch_bytes: i32,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Write the Fetch latency percentile curve and throughput over time to this SVG file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

/// Flags shared with kafka-producer-perf-test / rdkafka_performance users' habits.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Bootstrap broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Partitions of the topic if the bench creates it.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Messages to send (ignored when --duration-secs is given).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    #[arg(long)]
    pub duration_secs: Option<f64>,
    #[arg(long, value_enum, default_value_t = Acks::Leader)]
    pub acks: Acks,
    /// Bytes of records per batch (one batch per request).
    #[arg(long, default_value_t = 64 << 10)]
    pub batch_bytes: usize,
    /// Producer threads, each with its own connections.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Target rate in messages per second over all producers; -1: unthrottled.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub throughput: f64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Write the latency percentile curve and throughput over time to this SVG file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
}

/// Checks a `--plot` path: only SVG is drawn.
pub fn validate_plot(plot: &Option<std::path::PathBuf>) -> Result<(), String> {
    match plot {
        Some(path) if path.extension().and_then(|e| e.to_str()) != Some("svg") => Err(format!(
            "--plot {}: only .svg files are drawn",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Writes the run's plot if one was asked for.
pub fn write_plot(
    plot: &Option<std::path::PathBuf>,
    title: &str,
    latency: &hdrhistogram::Histogram<u64>,
    timeline: &[u64],
) -> Result<(), String> {
    if let Some(path) = plot {
        std::fs::write(path, stats::plot_svg(title, latency, timeline))
            .map_err(|e| format!("--plot {}: {e}", path.display()))?;
    }
    Ok(())
}

impl ProduceArgs {
    /// Checks the flags; `Err` is a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.message_bytes == 0 || self.message_bytes > 1 << 20 {
            return Err("--message-bytes must be between 1 and 1048576".into());
        }
        if self.batch_bytes < self.message_bytes || self.batch_bytes > 16 << 20 {
            return Err("--batch-bytes must be at least --message-bytes and at most 16 MiB".into());
        }
        if self.partitions < 1 || self.producers == 0 || self.in_flight == 0 {
            return Err("--partitions, --producers and --in-flight must be positive".into());
        }
        if self.throughput.is_nan() || (self.throughput <= 0.0 && self.throughput != -1.0) {
            return Err("--throughput must be positive, or -1 for unthrottled".into());
        }
        validate_plot(&self.plot)?;
        if self.duration_secs.is_some_and(|d| d.is_nan() || d <= 0.0) {
            return Err("--duration-secs must be positive".into());
        }
        Ok(())
    }

    pub fn duration(&self) -> Option<Duration> {
        self.duration_secs.map(Duration::from_secs_f64)
    }
}
