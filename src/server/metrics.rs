//! The Prometheus endpoint (issue 16): `GET /metrics` on `--metrics-listen`, in the text
//! exposition format, gathered at scrape time from every core's [`CoreMetrics`] (atomics
//! the cores write without locks; see `shard::metrics`). Runs on its own thread, off the
//! cores' executors, serving one connection at a time with read and write timeouts, so a
//! slow or hostile scraper holds at most that one thread for a bounded time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::shard::metrics::CoreMetrics;

/// Longest request head read from a scraper.
const REQUEST_HEAD_BYTES_MAX: usize = 8 << 10;
/// How long a scraper may take to send its request or read the answer.
const SCRAPER_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `listen` and serves `/metrics` from a thread of its own; the bound address.
pub fn start(listen: SocketAddr, cores: Vec<Arc<CoreMetrics>>) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(listen)
        .map_err(|e| format!("binding the metrics listener on {listen}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("the metrics listener's address: {e}"))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Cores(cores)));
    std::thread::Builder::new()
        .name("spindle-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = serve(&stream, &registry) {
                            tracing::debug!("metrics scrape: {e}");
                        }
                        close(stream);
                    }
                    Err(e) => tracing::warn!("metrics listener: {e}"),
                }
            }
        })
        .map_err(|e| format!("starting the metrics thread: {e}"))?;
    Ok(bound)
}

/// Ends the answer and reads what the scraper still sends (a bounded amount, for a bounded
/// time) before closing: closing with unread input would reset the connection, and the
/// scraper could lose the answer, an error status included.
fn close(mut stream: TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut left = DRAIN_BYTES_MAX;
    let mut chunk = [0u8; 4096];
    while left > 0 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => left = left.saturating_sub(read),
        }
    }
}

/// Most bytes read and dropped after an answer.
const DRAIN_BYTES_MAX: usize = 1 << 20;

/// Answers one HTTP/1.x request.
fn serve(mut stream: &TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(SCRAPER_TIMEOUT))?;
    stream.set_write_timeout(Some(SCRAPER_TIMEOUT))?;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
        if head.len() > REQUEST_HEAD_BYTES_MAX {
            return respond(stream, "431 Request Header Fields Too Large", "", "");
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("GET"), Some("/metrics")) => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => respond(
                    stream,
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    &body,
                ),
                Err(_) => respond(stream, "500 Internal Server Error", "", ""),
            }
        }
        (Some("GET"), Some(_)) => respond(stream, "404 Not Found", "text/plain", "/metrics\n"),
        _ => respond(stream, "405 Method Not Allowed", "", ""),
    }
}

fn respond(
    mut stream: &TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// Every core's metrics, read at scrape time.
#[derive(Debug)]
struct Cores(Vec<Arc<CoreMetrics>>);

/// An API key's name as Kafka spells it (`Produce`, `OffsetCommit`).
fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("unknown-{key}"), |key| format!("{key:?}"))
}

impl Collector for Cores {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        {
            let mut family = encoder.encode_descriptor(
                "spindle_requests",
                "Requests received, per core, API and version.",
                None,
                MetricType::Counter,
            )?;
            for core in &self.0 {
                for (key, version, count) in core.requests() {
                    let labels = [
                        ("core", core.core.to_string()),
                        ("api", api_name(key)),
                        ("version", version.to_string()),
                    ];
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_request_latency_seconds",
                "Time from a request's decoding to its answer, per core and API (Produce, Fetch, OffsetCommit).",
                None,
                MetricType::Histogram,
            )?;
            for core in &self.0 {
                for (key, histogram) in core.latencies() {
                    let (buckets, sum, count) = histogram.snapshot();
                    let labels = [("core", core.core.to_string()), ("api", format!("{key:?}"))];
                    family
                        .encode_family(&labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_connections",
                "Client connections open, per core.",
                None,
                MetricType::Gauge,
            )?;
            for core in &self.0 {
                let open = core.connections.load(std::sync::atomic::Ordering::Relaxed);
                let labels = [("core", core.core.to_string())];
                ConstGauge::new(open as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        type Gauge = fn(&crate::shard::metrics::PartitionGauges) -> i64;
        let partition_gauges: [(&str, &str, Gauge); 4] = [
            (
                "spindle_partition_log_start_offset",
                "First offset of the replica's log.",
                |g| g.log_start_offset,
            ),
            (
                "spindle_partition_log_end_offset",
                "Offset after the replica's last record.",
                |g| g.log_end_offset,
            ),
            (
                "spindle_partition_high_watermark",
                "Offsets below this are readable (replicated, where replicas exist).",
                |g| g.high_watermark,
            ),
            (
                "spindle_partition_size_bytes",
                "Bytes in the replica's segments.",
                |g| g.size_bytes as i64,
            ),
        ];
        let partitions: Vec<(u32, Vec<crate::shard::metrics::PartitionGauges>)> = self
            .0
            .iter()
            .map(|core| (core.core, core.partitions()))
            .collect();
        // Per core: the logs' fdatasyncs (summed over the open logs), the request bytes
        // held against the backpressure budget, the bytes kept for reads.
        {
            let mut family = encoder.encode_descriptor(
                "spindle_log_fsyncs",
                "fdatasyncs of active segments, over the logs open on the core.",
                None,
                MetricType::Counter,
            )?;
            for (core, gauges) in &partitions {
                let syncs: u64 = gauges.iter().map(|g| g.syncs).sum();
                let labels = [("core", core.to_string())];
                ConstCounter::new(syncs).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_log_fsync_seconds",
                "Time spent in those fdatasyncs (divide by the count for their mean).",
                None,
                MetricType::Counter,
            )?;
            for (core, gauges) in &partitions {
                let seconds: f64 = gauges.iter().map(|g| g.sync_seconds).sum();
                let labels = [("core", core.to_string())];
                ConstCounter::new(seconds).encode(family.encode_family(&labels)?)?;
            }
        }
        type CoreGauge = fn(&CoreMetrics) -> u64;
        let core_gauges: [(&str, &str, CoreGauge); 2] = [
            (
                "spindle_request_bytes_held",
                "Bytes of requests held against the core's budget (backpressure past it).",
                |core| {
                    core.request_bytes_held
                        .load(std::sync::atomic::Ordering::Relaxed)
                },
            ),
            (
                "spindle_cache_bytes",
                "Bytes the core's logs keep in memory for reads.",
                |core| core.cache_bytes.load(std::sync::atomic::Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in core_gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for core in &self.0 {
                let labels = [("core", core.core.to_string())];
                ConstGauge::new(value(core) as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        type CoreCounter = fn(&CoreMetrics) -> f64;
        let cleaner_counters: [(&str, &str, CoreCounter); 10] = [
            (
                "spindle_quota_throttled_requests",
                "Requests answered with a client-quota throttle (producer or consumer byte rate).",
                |core| {
                    core.quota_throttled_requests
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                },
            ),
            (
                "spindle_quota_throttle_seconds",
                "Throttle time given to clients past their byte-rate quotas.",
                |core| {
                    core.quota_throttle_nanos
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                        / 1e9
                },
            ),
            (
                "spindle_isr_shrinks",
                "In-sync set changes accepted that dropped a follower (leaders on this core).",
                |core| core.isr_shrinks.load(std::sync::atomic::Ordering::Relaxed) as f64,
            ),
            (
                "spindle_isr_expands",
                "In-sync set changes accepted that took a follower back.",
                |core| core.isr_expands.load(std::sync::atomic::Ordering::Relaxed) as f64,
            ),
            (
                "spindle_executor_busy_seconds",
                "Time the core's executor spent running tasks (busy = its rate).",
                |core| core.busy_nanos.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9,
            ),
            (
                "spindle_log_cleaner_passes",
                "Cleaning passes over compacted logs.",
                |core| {
                    core.cleaner_passes
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                },
            ),
            (
                "spindle_log_cleaner_read_bytes",
                "Bytes of sealed segments the cleaner read.",
                |core| {
                    core.cleaner_bytes_read
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                },
            ),
            (
                "spindle_log_cleaner_removed_bytes",
                "Bytes the cleaner removed from compacted logs.",
                |core| {
                    core.cleaner_bytes_removed
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                },
            ),
            (
                "spindle_log_cleaner_removed_records",
                "Superseded records and expired tombstones the cleaner removed.",
                |core| {
                    core.cleaner_records_removed
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                },
            ),
            (
                "spindle_log_cleaner_seconds",
                "Time the cleaner spent in its passes.",
                |core| {
                    core.cleaner_nanos
                        .load(std::sync::atomic::Ordering::Relaxed) as f64
                        / 1e9
                },
            ),
        ];
        for (name, help, value) in cleaner_counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for core in &self.0 {
                let labels = [("core", core.core.to_string())];
                ConstCounter::new(value(core)).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_task_queue_busy_seconds",
                "Time each of the core's task queues ran (requests, flush, maintenance, cleaner).",
                None,
                MetricType::Counter,
            )?;
            for core in &self.0 {
                for (index, queue) in crate::shard::metrics::TASK_QUEUES.iter().enumerate() {
                    let labels = [
                        ("core", core.core.to_string()),
                        ("queue", queue.to_string()),
                    ];
                    let nanos =
                        core.queue_busy_nanos[index].load(std::sync::atomic::Ordering::Relaxed);
                    ConstCounter::new(nanos as f64 / 1e9).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_errors",
                "Error codes answered, per API and Kafka error code (as Kafka's ErrorsPerSec).",
                None,
                MetricType::Counter,
            )?;
            for core in &self.0 {
                for (key, code, count) in core.errors() {
                    let labels = [
                        ("core", core.core.to_string()),
                        ("api", api_name(key)),
                        ("error", code.to_string()),
                    ];
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_offline_partitions",
                "Partitions this core leads by the metadata whose log is not serving.",
                None,
                MetricType::Gauge,
            )?;
            for core in &self.0 {
                let labels = [("core", core.core.to_string())];
                let offline = core
                    .offline_partitions
                    .load(std::sync::atomic::Ordering::Relaxed);
                ConstGauge::new(offline as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        // Replication health of the partitions led here (Kafka's UnderReplicatedPartitions):
        // per core, the led partitions with fewer replicas in sync than placed.
        {
            let mut family = encoder.encode_descriptor(
                "spindle_under_replicated_partitions",
                "Partitions led on this core with fewer in-sync replicas than replicas.",
                None,
                MetricType::Gauge,
            )?;
            for (core, gauges) in &partitions {
                let under = gauges
                    .iter()
                    .filter(|g| g.leader && g.in_sync_replicas < g.replicas)
                    .count();
                let labels = [("core", core.to_string())];
                ConstGauge::new(under as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_partition_in_sync_replicas",
                "In-sync replicas of a partition led here, the leader included.",
                None,
                MetricType::Gauge,
            )?;
            for gauge in partitions.iter().flat_map(|(_, gauges)| gauges) {
                if !gauge.leader {
                    continue;
                }
                let labels = [
                    ("topic", gauge.topic.clone()),
                    ("partition", gauge.partition.to_string()),
                    ("replicas", gauge.replicas.to_string()),
                ];
                ConstGauge::new(gauge.in_sync_replicas as i64)
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        // Consumer groups: each committed offset, and the lag behind the partition's high
        // watermark where this node holds the partition's leader.
        let committed: Vec<(String, String, i32, i64)> =
            self.0.iter().flat_map(|core| core.committed()).collect();
        let leaders: std::collections::HashMap<(&str, i32), i64> = partitions
            .iter()
            .flat_map(|(_, gauges)| gauges)
            .filter(|gauge| gauge.leader)
            .map(|gauge| {
                (
                    (gauge.topic.as_str(), gauge.partition),
                    gauge.high_watermark,
                )
            })
            .collect();
        {
            let mut family = encoder.encode_descriptor(
                "spindle_group_committed_offset",
                "A consumer group's committed offset, per partition (groups coordinated on this node).",
                None,
                MetricType::Gauge,
            )?;
            for (group, topic, partition, offset) in &committed {
                let labels = [
                    ("group", group.clone()),
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ];
                ConstGauge::new(*offset).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "spindle_group_lag",
                "Records between a group's committed offset and the partition's high watermark (partitions led on this node).",
                None,
                MetricType::Gauge,
            )?;
            for (group, topic, partition, offset) in &committed {
                let Some(high_watermark) = leaders.get(&(topic.as_str(), *partition)) else {
                    continue;
                };
                let labels = [
                    ("group", group.clone()),
                    ("topic", topic.clone()),
                    ("partition", partition.to_string()),
                ];
                ConstGauge::new((high_watermark - offset).max(0))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        // Client traffic per topic: every partition of it on every core of this node.
        type Counter = fn(&crate::shard::metrics::PartitionGauges) -> u64;
        let topic_counters: [(&str, &str, Counter); 3] = [
            (
                "spindle_topic_bytes_in",
                "Bytes of record batches produced to the topic.",
                |g| g.bytes_in,
            ),
            (
                "spindle_topic_records_in",
                "Records produced to the topic.",
                |g| g.records_in,
            ),
            (
                "spindle_topic_bytes_out",
                "Bytes of record batches fetched by consumers.",
                |g| g.bytes_out,
            ),
        ];
        for (name, help, value) in topic_counters {
            let mut by_topic: std::collections::BTreeMap<&str, u64> = Default::default();
            for gauge in partitions.iter().flat_map(|(_, gauges)| gauges) {
                *by_topic.entry(&gauge.topic).or_default() += value(gauge);
            }
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (topic, total) in by_topic {
                let labels = [("topic", topic)];
                ConstCounter::new(total).encode(family.encode_family(&labels)?)?;
            }
        }
        for (name, help, value) in partition_gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (core, gauges) in &partitions {
                for gauge in gauges {
                    let labels = [
                        ("topic", gauge.topic.clone()),
                        ("partition", gauge.partition.to_string()),
                        ("core", core.to_string()),
                        ("leader", gauge.leader.to_string()),
                    ];
                    ConstGauge::new(value(gauge)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}
