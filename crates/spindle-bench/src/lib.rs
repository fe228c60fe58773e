//! `spindle bench`: load generators that speak the Kafka protocol to any Kafka-compatible
//! broker. Runs on plain threads of the client process (not on the broker's executors).
//!
//! Two engines behind one interface ([`LoadEngine`]): `native` (pre-built record batches,
//! pipelined requests, one connection per partition leader: the generator is never the
//! bottleneck) and `rdkafka` (librdkafka, configured the way Kafka users configure it: the
//! numbers compare with any broker and with other tools built on librdkafka).

pub mod bars;
pub mod chart;
pub mod compare;
pub mod e2e;
pub mod keys;
pub mod native;
pub mod plot;
pub mod rate;
pub mod rdkafka_engine;
pub mod stats;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use spindle_protocol::compression::Codec;
use stats::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all")]
    All,
}

/// As a Kafka user writes it: `acks=0`, `acks=1`, `acks=all` (titles of plots and reports).
impl std::fmt::Display for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        };
        write!(f, "acks={value}")
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Speaks the protocol itself: pre-built batches, pipelined requests.
    Native,
    /// librdkafka, as any Kafka client application would use it.
    Rdkafka,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    None,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn codec(self) -> Codec {
        match self {
            Compression::None => Codec::None,
            Compression::Lz4 => Codec::Lz4,
            Compression::Zstd => Codec::Zstd,
        }
    }

    /// librdkafka's `compression.type` value.
    pub fn librdkafka_name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Produce as fast as allowed (or at --throughput) and report messages/s, MB/s and
    /// produce latency (send to acknowledgement).
    Produce(ProduceArgs),
    /// Read a topic from its earliest offsets to its end and report messages/s and MB/s.
    Consume(ConsumeArgs),
    /// Produce and consume at once; each record carries its send time and the consumer
    /// records produce-to-consume latency.
    E2e(E2eArgs),
}

/// Flags every subcommand has.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Bootstrap broker.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Client implementation: native (the generator is never the bottleneck) or rdkafka
    /// (librdkafka: comparable with any Kafka-compatible broker).
    #[arg(long, value_enum, default_value_t = Engine::Native)]
    pub engine: Engine,
    /// Seconds of load before measuring starts (connections warm, caches filled); nothing
    /// done during the warm-up counts in the results.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_secs: f64,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// Write the latency percentile curve and throughput over time to this chart (.svg or
    /// .png).
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// The plot's latency axis: linear, or log (median and tail decades apart stay readable).
    #[arg(long, value_enum, default_value_t = plot::LatencyScale::Linear)]
    pub plot_latency_scale: plot::LatencyScale,
    /// Write the latency distribution to this file in HdrHistogram's percentile text
    /// (.hgrm, ms), for `plot` to overlay runs.
    #[arg(long, value_name = "FILE.hgrm")]
    pub percentiles_out: Option<std::path::PathBuf>,
}

/// Flags shared with kafka-producer-perf-test / rdkafka_performance users' habits.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Partitions of the topic if the bench creates it.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    #[arg(long, default_value_t = 100)]
    pub message_bytes: usize,
    /// Messages to send (ignored when --duration-secs is given).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Seconds to send for (after the warm-up).
    #[arg(long)]
    pub duration_secs: Option<f64>,
    /// Target rate in messages per second over all producers; -1: unthrottled.
    #[arg(long, default_value_t = -1.0, allow_negative_numbers = true)]
    pub throughput: f64,
    #[arg(long, value_enum, default_value_t = Acks::Leader)]
    pub acks: Acks,
    /// Most bytes of records per batch (the native engine sends one batch per request).
    #[arg(long, default_value_t = 64 << 10)]
    pub batch_bytes: usize,
    /// Longest a message waits for its batch to fill (librdkafka's linger.ms). The native
    /// engine applies it to paced runs; unthrottled, its batches are always full.
    #[arg(long, default_value_t = 5.0)]
    pub linger_ms: f64,
    /// Producers, each with its own connections (native: a sender and a receiver thread
    /// per partition leader; rdkafka: one librdkafka producer).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Requests in flight per connection. The default keeps latency low: on a 2-core VM it gave
    /// about 10 M msg/s at 100 B with a p99 near 2 ms. It does not reach the broker's byte rate
    /// with large messages: at 1 KiB, 8 gave 1.1 GB/s where 64 gave 1.44 GB/s (p99 10-11 ms).
    /// Use 64 to measure capacity in bytes, as perf/scenarios/standard.txt does.
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Key every message, from a pool of 4096 keys a partition taken in turn (so a compacted
    /// topic sees each key superseded), placed by Kafka's default partitioner (murmur2).
    #[arg(long)]
    pub keys: bool,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
}

/// How consumers split a topic.
#[derive(Debug, Clone, Args)]
pub struct ConsumerArgs {
    /// Consumers (threads, each with its own connections or librdkafka consumer).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Join this consumer group (subscribe) instead of assigning partitions to the
    /// consumers round-robin. rdkafka engine only.
    #[arg(long)]
    pub group: Option<String>,
    /// Fetch max_bytes (and max bytes per partition).
    #[arg(long, default_value_t = 16 << 20)]
    pub fetch_bytes: i32,
}

#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
    /// Stop after this many messages (0: read every partition up to its high watermark
    /// as it was when the run started).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,
    /// Passes over the topic (a second pass reads what the first left in the broker's
    /// memory, if it fits). Native engine only.
    #[arg(long, default_value_t = 1)]
    pub passes: u32,
}

#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub produce: ProduceArgs,
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

/// What a bench run reports: the measured summary, and for e2e what the producers saw.
pub struct Report {
    pub summary: Summary,
    pub e2e: Option<(u64, [u64; 6])>,
}

impl Report {
    pub fn human(&self) -> String {
        match self.e2e {
            Some((produced, [p50, p90, p99, p999, p9999, max])) => format!(
                "produced {produced} (produce latency us p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} p99.99 {p9999} max {max}); consumed {}",
                self.summary.human()
            ),
            None => self.summary.human(),
        }
    }

    /// One JSON object: the summary's fields, and for e2e `produced` and
    /// `produce_latency_us`.
    pub fn json(&self) -> String {
        serde_json::to_string(&self.summary.json_fields(self.e2e)).expect("plain numbers serialize")
    }
}

/// One client implementation of the three workloads.
pub trait LoadEngine {
    fn produce(&self, args: &ProduceArgs) -> Result<Summary, String>;
    fn consume(&self, args: &ConsumeArgs) -> Result<Summary, String>;
    fn e2e(&self, args: &E2eArgs) -> Result<e2e::E2eOutcome, String>;
}

fn engine(kind: Engine) -> Box<dyn LoadEngine> {
    match kind {
        Engine::Native => Box::new(native::Native),
        Engine::Rdkafka => Box::new(rdkafka_engine::Rdkafka),
    }
}

impl BenchCommand {
    pub fn common(&self) -> &CommonArgs {
        match self {
            BenchCommand::Produce(args) => &args.common,
            BenchCommand::Consume(args) => &args.common,
            BenchCommand::E2e(args) => &args.produce.common,
        }
    }

    /// The subcommand's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            BenchCommand::Produce(_) => "produce",
            BenchCommand::Consume(_) => "consume",
            BenchCommand::E2e(_) => "e2e",
        }
    }

    /// Checks the flags; `Err` is a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        self.common().validate()?;
        match self {
            BenchCommand::Produce(args) => args.validate(),
            BenchCommand::Consume(args) => {
                args.consumer.validate(args.common.engine)?;
                if args.passes == 0 {
                    return Err("--passes must be positive".into());
                }
                if args.passes > 1 && args.common.engine != Engine::Native {
                    return Err("--passes is for the native engine".into());
                }
                Ok(())
            }
            BenchCommand::E2e(args) => {
                args.produce.validate()?;
                args.consumer.validate(args.produce.common.engine)?;
                if args.produce.acks == Acks::None {
                    return Err("e2e counts acknowledged messages: use --acks 1 or all".into());
                }
                if args.produce.message_bytes < e2e::SEND_TIME_BYTES {
                    return Err(format!(
                        "e2e needs --message-bytes >= {} (the send time)",
                        e2e::SEND_TIME_BYTES
                    ));
                }
                Ok(())
            }
        }
    }

    /// Runs the subcommand with the engine it names.
    pub fn run(&self) -> Result<Report, String> {
        self.validate()?;
        let engine = engine(self.common().engine);
        Ok(match self {
            BenchCommand::Produce(args) => Report {
                summary: engine.produce(args)?,
                e2e: None,
            },
            BenchCommand::Consume(args) => Report {
                summary: engine.consume(args)?,
                e2e: None,
            },
            BenchCommand::E2e(args) => {
                let outcome = engine.e2e(args)?;
                Report {
                    summary: outcome.consumed,
                    e2e: Some((outcome.produced, outcome.produce_latency_us)),
                }
            }
        })
    }
}

impl CommonArgs {
    fn validate(&self) -> Result<(), String> {
        if !self.warmup_secs.is_finite() || self.warmup_secs < 0.0 {
            return Err("--warmup-secs must be zero or positive".into());
        }
        if self.topic.is_empty() {
            return Err("--topic must not be empty".into());
        }
        match &self.plot {
            Some(path) => {
                chart::check_extension(path).map_err(|reason| reason.replacen("--out", "--plot", 1))
            }
            None => Ok(()),
        }
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup_secs)
    }

    /// Writes the run's plot (its latency percentiles and throughput over time) and its
    /// percentile distribution, where asked for.
    pub fn plot_run(&self, title: &str, run: &stats::Run) -> Result<(), String> {
        if let Some(path) = &self.percentiles_out {
            let text = compare::hgrm(&run.latency.lock().expect("latency"));
            std::fs::write(path, text)
                .map_err(|e| format!("--percentiles-out {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.plot {
            let svg = plot::plot_svg(
                title,
                &run.latency.lock().expect("latency"),
                &run.timeline.buckets(),
                &run.timeline.p99_by_second(),
                self.plot_latency_scale,
            )
            .map_err(|e| format!("--plot {}: {e}", path.display()))?;
            chart::write(path, &svg).map_err(|e| format!("--plot: {e}"))?;
        }
        Ok(())
    }
}

impl ConsumerArgs {
    fn validate(&self, engine: Engine) -> Result<(), String> {
        if self.consumers == 0 || self.consumers > 1024 {
            return Err("--consumers must be between 1 and 1024".into());
        }
        if self.fetch_bytes < 1024 {
            return Err("--fetch-bytes must be at least 1024".into());
        }
        if self.group.is_some() && engine != Engine::Rdkafka {
            return Err("--group needs --engine rdkafka (the native engine assigns)".into());
        }
        if self.group.as_ref().is_some_and(|g| g.is_empty()) {
            return Err("--group must not be empty".into());
        }
        Ok(())
    }
}

impl ProduceArgs {
    /// Checks the flags; `Err` is a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        self.common.validate()?;
        if self.message_bytes == 0 || self.message_bytes > 1 << 20 {
            return Err("--message-bytes must be between 1 and 1048576".into());
        }
        if self.batch_bytes < self.message_bytes || self.batch_bytes > 16 << 20 {
            return Err("--batch-bytes must be at least --message-bytes and at most 16 MiB".into());
        }
        if self.partitions < 1 || self.producers == 0 || self.in_flight == 0 {
            return Err("--partitions, --producers and --in-flight must be positive".into());
        }
        if self.producers > 1024 || self.in_flight > 1024 {
            return Err("--producers and --in-flight are at most 1024".into());
        }
        if self.throughput.is_nan() || (self.throughput <= 0.0 && self.throughput != -1.0) {
            return Err("--throughput must be positive, or -1 for unthrottled".into());
        }
        if !self.linger_ms.is_finite() || !(0.0..=60_000.0).contains(&self.linger_ms) {
            return Err("--linger-ms must be between 0 and 60000".into());
        }
        if self
            .duration_secs
            .is_some_and(|d| !d.is_finite() || d <= 0.0)
        {
            return Err("--duration-secs must be positive".into());
        }
        Ok(())
    }

    pub fn duration(&self) -> Option<Duration> {
        self.duration_secs.map(Duration::from_secs_f64)
    }

    pub fn linger(&self) -> Duration {
        Duration::from_secs_f64(self.linger_ms / 1000.0)
    }

    /// Messages per batch the native engine builds.
    pub fn messages_per_batch(&self) -> u64 {
        (self.batch_bytes / self.message_bytes).max(1) as u64
    }
}
