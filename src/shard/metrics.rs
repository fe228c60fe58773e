//! One core's counters for the metrics endpoint (issue 16). The core writes its own
//! [`CoreMetrics`] with relaxed atomic adds (no lock, no other core touches those cache
//! lines, so the data path stays lock-free); the endpoint's thread reads every core's at
//! scrape time. Partition gauges are copied in once a second by the core's maintenance
//! loop, behind a mutex the data path never takes. Written on the owning core, read on the
//! metrics thread.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Request counters per API key below this, and per version below [`API_VERSIONS`];
/// requests outside are counted in the last slot of their row.
pub const API_KEYS: usize = 128;
pub const API_VERSIONS: usize = 32;

/// Upper bounds (seconds) of the request latency histogram's buckets; +Inf follows.
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The APIs whose latency is kept as a histogram (the data path and commits).
pub const TIMED_APIS: [ApiKey; 3] = [ApiKey::Produce, ApiKey::Fetch, ApiKey::OffsetCommit];

/// One latency histogram: a count per bucket (not cumulative), the sum and the count.
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl LatencyHistogram {
    fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// `(count per bucket as (upper bound, count), f64::MAX standing for +Inf last, sum in
    /// seconds, count)`: not cumulative, as the exposition encoder wants them.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets = LATENCY_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (buckets, sum, self.count.load(Ordering::Relaxed))
    }
}

/// What one partition replica on this core looks like, as of the last copy.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionGauges {
    pub topic: String,
    pub partition: i32,
    pub leader: bool,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub size_bytes: u64,
    /// For a leader: its partition's replicas and how many are in sync (both 1 for a
    /// partition with one replica); 0 for a follower.
    pub replicas: u64,
    pub in_sync_replicas: u64,
    /// fdatasyncs of the replica's log since it was opened, and their total seconds.
    pub syncs: u64,
    pub sync_seconds: f64,
    /// Client traffic since the replica was opened (counters).
    pub bytes_in: u64,
    pub records_in: u64,
    pub bytes_out: u64,
}

/// Client traffic through one partition replica, counted on its core: plain cells, since
/// only that core touches them; copied out once a second with the gauges.
#[derive(Debug, Default)]
pub struct PartitionTraffic {
    pub bytes_in: Cell<u64>,
    pub records_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
}

impl PartitionTraffic {
    /// A producer's batch of `records` records, `bytes` long, was appended.
    pub fn produced(&self, bytes: usize, records: u64) {
        self.bytes_in.set(self.bytes_in.get() + bytes as u64);
        self.records_in.set(self.records_in.get() + records);
    }

    /// A consumer was sent `bytes` of batches.
    pub fn fetched(&self, bytes: usize) {
        self.bytes_out.set(self.bytes_out.get() + bytes as u64);
    }
}

/// One core's counters and gauges.
pub struct CoreMetrics {
    pub core: u32,
    requests: Box<[AtomicU64]>,
    latency: [LatencyHistogram; TIMED_APIS.len()],
    /// Client connections open on this core now.
    pub connections: AtomicU64,
    partitions: Mutex<Vec<PartitionGauges>>,
    /// Bytes of requests held now against the core's budget (`--max-buffered-bytes-per-core`
    /// backpressure) and bytes the core's logs keep for reads, as of the last copy.
    pub request_bytes_held: AtomicU64,
    pub cache_bytes: AtomicU64,
    /// `(group, topic, partition, committed offset)` of the groups this core coordinates.
    committed: Mutex<Vec<(String, String, i32, i64)>>,
    /// The cleaner's work on this core: passes, bytes it read, bytes and records it
    /// removed, and its time in nanoseconds.
    pub cleaner_passes: AtomicU64,
    pub cleaner_bytes_read: AtomicU64,
    pub cleaner_bytes_removed: AtomicU64,
    pub cleaner_records_removed: AtomicU64,
    pub cleaner_nanos: AtomicU64,
    /// In-sync set changes this core's leaders took from the quorum: some follower dropped,
    /// some taken back (Kafka's IsrShrinksPerSec and IsrExpandsPerSec).
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    /// Requests answered with a client-quota throttle, and the throttle time given, in
    /// nanoseconds (Kafka's per-client throttle-time, summed over this core's clients).
    pub quota_throttled_requests: AtomicU64,
    pub quota_throttle_nanos: AtomicU64,
    /// Partitions this core leads by the metadata whose log is not serving: it could not
    /// be opened, or a write failed (Kafka's OfflinePartitionsCount, per core).
    pub offline_partitions: AtomicU64,
    /// Nanoseconds the core's executor spent running tasks, in all, and per task queue in
    /// [`TASK_QUEUES`] order.
    pub busy_nanos: AtomicU64,
    pub queue_busy_nanos: [AtomicU64; TASK_QUEUES.len()],
    /// Errors answered, per API key and error code ([`ERROR_SLOTS`] per key).
    errors: Box<[AtomicU64]>,
}

/// Error codes counted apart, per API: Kafka's run from -1 to about 130. A code outside
/// shares the last slot.
pub const ERROR_SLOTS: usize = 160;

fn error_slot(code: i16) -> usize {
    // -1 (UNKNOWN_SERVER_ERROR) takes slot 0, which no error uses (0 is success).
    if code == -1 {
        0
    } else {
        (code.max(1) as usize).min(ERROR_SLOTS - 1)
    }
}

fn slot_code(slot: usize) -> i16 {
    if slot == 0 { -1 } else { slot as i16 }
}

thread_local! {
    /// The metrics of the core this thread runs (a shard's executor is one thread), so
    /// code that answers requests can count errors without the shard at hand.
    static CORE_METRICS: std::cell::RefCell<Option<Arc<CoreMetrics>>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes `metrics` this thread's (the shard does it when it is built on its core).
pub fn install(metrics: Arc<CoreMetrics>) {
    CORE_METRICS.with(|core| *core.borrow_mut() = Some(metrics));
}

/// Counts the error codes `codes` visits as `api_key`'s on this thread's core, if any.
pub fn count_errors(api_key: i16, codes: impl FnOnce(&mut dyn FnMut(i16))) {
    CORE_METRICS.with(|core| {
        if let Some(metrics) = core.borrow().as_ref() {
            codes(&mut |code| metrics.error(api_key, code));
        }
    });
}

/// Counts a request throttled for `throttle_ms` by a client quota on this thread's core.
pub fn count_throttle(throttle_ms: u32) {
    CORE_METRICS.with(|core| {
        if let Some(metrics) = core.borrow().as_ref() {
            metrics
                .quota_throttled_requests
                .fetch_add(1, Ordering::Relaxed);
            metrics
                .quota_throttle_nanos
                .fetch_add(u64::from(throttle_ms) * 1_000_000, Ordering::Relaxed);
        }
    });
}

/// The task queues whose busy time is counted, by name (see `shard::tasks`).
pub const TASK_QUEUES: [&str; 4] = ["requests", "flush", "maintenance", "cleaner"];

impl std::fmt::Debug for CoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CoreMetrics(core {})", self.core)
    }
}

impl CoreMetrics {
    pub fn new(core: u32) -> CoreMetrics {
        CoreMetrics {
            core,
            requests: (0..API_KEYS * API_VERSIONS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency: std::array::from_fn(|_| LatencyHistogram::new()),
            connections: AtomicU64::new(0),
            partitions: Mutex::new(Vec::new()),
            request_bytes_held: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            committed: Mutex::new(Vec::new()),
            cleaner_passes: AtomicU64::new(0),
            cleaner_bytes_read: AtomicU64::new(0),
            cleaner_bytes_removed: AtomicU64::new(0),
            cleaner_records_removed: AtomicU64::new(0),
            cleaner_nanos: AtomicU64::new(0),
            isr_shrinks: AtomicU64::new(0),
            quota_throttled_requests: AtomicU64::new(0),
            quota_throttle_nanos: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            offline_partitions: AtomicU64::new(0),
            busy_nanos: AtomicU64::new(0),
            queue_busy_nanos: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: (0..API_KEYS * ERROR_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    /// Counts one error `code` answered to an `api_key` request.
    pub fn error(&self, api_key: i16, code: i16) {
        let key = (api_key.max(0) as usize).min(API_KEYS - 1);
        self.errors[key * ERROR_SLOTS + error_slot(code)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every `(api key, error code, count)` counted so far.
    pub fn errors(&self) -> Vec<(i16, i16, u64)> {
        self.errors
            .iter()
            .enumerate()
            .filter_map(|(index, count)| {
                let count = count.load(Ordering::Relaxed);
                (count > 0).then(|| {
                    let (key, slot) = (index / ERROR_SLOTS, index % ERROR_SLOTS);
                    (key as i16, slot_code(slot), count)
                })
            })
            .collect()
    }

    /// Counts one cleaning pass.
    pub fn cleaned(&self, stats: &crate::storage::CompactionStats, took: std::time::Duration) {
        let add = |counter: &AtomicU64, value: u64| counter.fetch_add(value, Ordering::Relaxed);
        add(&self.cleaner_passes, 1);
        add(&self.cleaner_bytes_read, stats.bytes_before);
        add(
            &self.cleaner_bytes_removed,
            stats.bytes_before.saturating_sub(stats.bytes_after),
        );
        add(&self.cleaner_records_removed, stats.records_removed);
        add(&self.cleaner_nanos, took.as_nanos() as u64);
    }

    /// Counts one request of `api_key` at `version`.
    pub fn request(&self, api_key: i16, version: i16) {
        let key = (api_key.max(0) as usize).min(API_KEYS - 1);
        let version = (version.max(0) as usize).min(API_VERSIONS - 1);
        self.requests[key * API_VERSIONS + version].fetch_add(1, Ordering::Relaxed);
    }

    /// Every `(api key, version, count)` seen at least once.
    pub fn requests(&self) -> Vec<(i16, i16, u64)> {
        self.requests
            .iter()
            .enumerate()
            .filter_map(|(slot, count)| {
                let count = count.load(Ordering::Relaxed);
                (count > 0).then_some((
                    (slot / API_VERSIONS) as i16,
                    (slot % API_VERSIONS) as i16,
                    count,
                ))
            })
            .collect()
    }

    /// Whether `api_key`'s latency is kept.
    pub fn is_timed(api_key: ApiKey) -> bool {
        TIMED_APIS.contains(&api_key)
    }

    /// Records one request of a timed API taking `elapsed`, from its read to its answer.
    pub fn observe(&self, api_key: ApiKey, elapsed: Duration) {
        if let Some(index) = TIMED_APIS.iter().position(|&timed| timed == api_key) {
            self.latency[index].observe(elapsed);
        }
    }

    /// The latency histogram of each timed API.
    pub fn latencies(&self) -> impl Iterator<Item = (ApiKey, &LatencyHistogram)> {
        TIMED_APIS.iter().copied().zip(&self.latency)
    }

    /// Replaces the partition gauges (the core's maintenance loop, once a second).
    pub fn set_partitions(&self, partitions: Vec<PartitionGauges>) {
        *self.partitions.lock().expect("partition gauges") = partitions;
    }

    pub fn partitions(&self) -> Vec<PartitionGauges> {
        self.partitions.lock().expect("partition gauges").clone()
    }

    /// Replaces the committed offsets of the groups this core coordinates (with the
    /// partition gauges, once a second).
    pub fn set_committed(&self, committed: Vec<(String, String, i32, i64)>) {
        *self.committed.lock().expect("committed offsets") = committed;
    }

    pub fn committed(&self) -> Vec<(String, String, i32, i64)> {
        self.committed.lock().expect("committed offsets").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_count_per_key_and_version_and_latencies_fall_in_their_buckets() {
        let metrics = CoreMetrics::new(3);
        metrics.request(0, 9);
        metrics.request(0, 9);
        metrics.request(1, 12);
        metrics.request(999, 99); // clamped into the last slot, not lost
        assert_eq!(
            metrics.requests(),
            vec![
                (0, 9, 2),
                (1, 12, 1),
                ((API_KEYS - 1) as i16, (API_VERSIONS - 1) as i16, 1)
            ]
        );
        metrics.observe(ApiKey::Produce, Duration::from_micros(300));
        metrics.observe(ApiKey::Produce, Duration::from_secs(60));
        metrics.observe(ApiKey::Metadata, Duration::from_secs(1)); // not timed
        let (_, produce) = metrics.latencies().next().unwrap();
        let (buckets, sum, count) = produce.snapshot();
        assert_eq!(count, 2);
        assert!((sum - 60.0003).abs() < 1e-6, "{sum}");
        // 300 us lands in the bucket up to 0.5 ms; 60 s only in +Inf.
        assert_eq!(buckets[1], (0.00025, 0));
        assert_eq!(buckets[2], (0.0005, 1));
        assert_eq!(buckets[buckets.len() - 2].1, 0);
        assert_eq!(*buckets.last().unwrap(), (f64::MAX, 1));
        let total: u64 = metrics.latencies().map(|(_, h)| h.snapshot().2).sum();
        assert_eq!(total, 2);
    }
}
