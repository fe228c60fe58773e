//! Bench statistics: latency histograms (HdrHistogram, microseconds, 3 significant
//! digits) merged across threads, and the summary a run prints (also as one JSON line).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::plot::Timeline;

/// Latencies up to an hour are recorded exactly enough; longer ones saturate.
const LATENCY_US_MAX: u64 = 3_600_000_000;

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Records `micros`, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Records `count` samples of `micros`, clamped into the histogram's range.
pub fn record_n(histogram: &mut Histogram<u64>, micros: u64, count: u64) {
    histogram.saturating_record_n(micros.clamp(1, LATENCY_US_MAX), count);
}

/// The `--json` line: one flat object, fields in this order (scripts read it by name).
#[derive(Debug, Serialize)]
pub struct SummaryJson {
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub bytes_per_sec: f64,
    pub errors: u64,
    pub latency_us: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produced: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produce_latency_us: Option<Percentiles>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl From<[u64; 6]> for Percentiles {
    fn from([p50, p90, p99, p999, p9999, max]: [u64; 6]) -> Percentiles {
        Percentiles {
            p50,
            p90,
            p99,
            p999,
            p9999,
            max,
        }
    }
}

/// `value` to `1 / scale` (the precision the human line shows, and plenty for a bench).
fn rounded(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub messages: u64,
    pub bytes: u64,
    pub errors: u64,
    pub seconds: f64,
    /// `(p50, p90, p99, p99.9, p99.99, max)` in microseconds; zeros without samples.
    pub latency_us: [u64; 6],
}

impl Summary {
    pub fn new(
        messages: u64,
        bytes: u64,
        errors: u64,
        seconds: f64,
        latency: &Histogram<u64>,
    ) -> Summary {
        let at = |q: f64| {
            if latency.is_empty() {
                0
            } else {
                latency.value_at_quantile(q)
            }
        };
        Summary {
            messages,
            bytes,
            errors,
            seconds,
            latency_us: [
                at(0.5),
                at(0.9),
                at(0.99),
                at(0.999),
                at(0.9999),
                if latency.is_empty() { 0 } else { latency.max() },
            ],
        }
    }

    pub fn messages_per_sec(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }

    pub fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9)
    }

    pub fn human(&self) -> String {
        let [p50, p90, p99, p999, p9999, max] = self.latency_us;
        format!(
            "{} messages in {:.2} s: {:.0} msg/s, {:.1} MB/s, {} errors; latency us p50 {p50} p90 {p90} p99 {p99} p99.9 {p999} p99.99 {p9999} max {max}",
            self.messages,
            self.seconds,
            self.messages_per_sec(),
            self.bytes_per_sec() / 1e6,
            self.errors
        )
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.json_fields(None)).expect("plain numbers serialize")
    }

    /// The `--json` object's fields; an e2e run adds what its producers saw.
    pub fn json_fields(&self, e2e: Option<(u64, [u64; 6])>) -> SummaryJson {
        SummaryJson {
            messages: self.messages,
            bytes: self.bytes,
            seconds: rounded(self.seconds, 1e6),
            messages_per_sec: rounded(self.messages_per_sec(), 10.0),
            bytes_per_sec: rounded(self.bytes_per_sec(), 10.0),
            errors: self.errors,
            latency_us: Percentiles::from(self.latency_us),
            produced: e2e.map(|(produced, _)| produced),
            produce_latency_us: e2e.map(|(_, latency)| Percentiles::from(latency)),
        }
    }
}

/// The shared state of one run, for every thread of it: when measuring starts (after the
/// warm-up), the counts, the merged latency histogram, throughput over time and the stop
/// signal. Work completed during the warm-up is not counted.
pub struct Run {
    pub measure_from: Instant,
    pub timeline: Arc<Timeline>,
    pub latency: Arc<Mutex<Histogram<u64>>>,
    /// Latencies merged since the progress thread last looked: its p99 is the second's
    /// (two significant digits are plenty for a curve over time).
    window: Arc<Mutex<Histogram<u64>>>,
    messages: AtomicU64,
    /// Messages completed, warm-up included.
    total: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    /// First and last counted completions.
    span: Mutex<Option<(Instant, Instant)>>,
    /// Set by a thread that failed, or when the run's budget is spent: everyone stops.
    pub stop: AtomicBool,
}

impl Run {
    pub fn new(warmup: Duration) -> Run {
        let measure_from = Instant::now() + warmup;
        Run {
            measure_from,
            timeline: Arc::new(Timeline::new(measure_from)),
            latency: Arc::new(Mutex::new(latency_histogram())),
            window: Arc::new(Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_US_MAX, 2).expect("valid histogram bounds"),
            )),
            messages: Default::default(),
            total: Default::default(),
            bytes: Default::default(),
            errors: Default::default(),
            span: Mutex::new(None),
            stop: Default::default(),
        }
    }

    /// Whether what completes now counts (the warm-up is over).
    pub fn measuring(&self) -> bool {
        Instant::now() >= self.measure_from
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts `messages` (`bytes`) completed now, unless still warming up.
    pub fn count(&self, messages: u64, bytes: u64) {
        use Ordering::Relaxed;
        self.total.fetch_add(messages, Relaxed);
        let now = Instant::now();
        if now < self.measure_from {
            return;
        }
        self.messages.fetch_add(messages, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        self.timeline.add(messages);
        let mut span = self.span.lock().expect("run");
        *span = Some(span.map_or((now, now), |(first, last)| (first, last.max(now))));
    }

    /// Counts one failed request or message (warm-up included: errors always matter).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves a thread's latencies into the run's histogram.
    pub fn merge(&self, local: &mut Histogram<u64>) {
        if local.is_empty() {
            return;
        }
        self.latency
            .lock()
            .expect("latency")
            .add(&*local)
            .expect("same bounds");
        self.window
            .lock()
            .expect("window")
            .add(&*local)
            .expect("same bounds");
        local.reset();
    }

    /// Messages completed so far, warm-up included.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The run's summary: counts over the time from the end of the warm-up to the last
    /// completion.
    pub fn summary(&self) -> Summary {
        self.summary_from(self.measure_from)
    }

    /// The summary over the time from the first counted completion to the last: for
    /// consumers, whose start (connecting, joining a group: Kafka's consumer perf tool
    /// reports that apart as rebalance time) is not reading.
    pub fn summary_from_first_completion(&self) -> Summary {
        let first = self.span.lock().expect("run").map(|(first, _)| first);
        self.summary_from(first.unwrap_or(self.measure_from))
    }

    fn summary_from(&self, from: Instant) -> Summary {
        let seconds = self
            .span
            .lock()
            .expect("run")
            .map_or(0.0, |(_, last)| last.duration_since(from).as_secs_f64());
        Summary::new(
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            seconds,
            &self.latency.lock().expect("latency"),
        )
    }

    /// Prints progress every second until the returned guard is dropped.
    pub fn progress(self: &Arc<Run>, message_bytes: u64) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        let thread = spawn_progress(
            self.timeline.clone(),
            self.latency.clone(),
            self.window.clone(),
            message_bytes,
            done.clone(),
        );
        Progress {
            done,
            thread: Some(thread),
        }
    }
}

/// The message budget shared by every sender of a run: a count, or a deadline.
pub struct Budget {
    remaining: AtomicU64,
    deadline: Option<Instant>,
}

impl Budget {
    pub fn new(args: &super::ProduceArgs, run: &Run) -> Budget {
        Budget {
            remaining: AtomicU64::new(args.messages),
            deadline: args.duration().map(|d| run.measure_from + d),
        }
    }

    /// Takes up to `messages` from the budget; 0 when the run is over.
    pub fn take(&self, messages: u64, run: &Run) -> u64 {
        if run.stopped() {
            return 0;
        }
        if let Some(deadline) = self.deadline {
            return if Instant::now() < deadline {
                messages
            } else {
                0
            };
        }
        match self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left.saturating_sub(messages))
            }) {
            Ok(left) => left.min(messages),
            Err(_) => 0,
        }
    }
}

/// Stops the progress line when dropped.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Joins bench threads; the first failure (or panic) is the run's error.
pub fn join_all(threads: Vec<std::thread::JoinHandle<Result<(), String>>>) -> Result<(), String> {
    let mut failure = None;
    for thread in threads {
        let outcome = thread
            .join()
            .unwrap_or_else(|_| Err("a bench thread panicked".into()));
        if let Err(reason) = outcome {
            failure.get_or_insert(reason);
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Prints a progress line to stderr every second until `done`: the last second's rate,
/// MB/s, the p99 so far and the total. Each second it also files that second's p99 (from
/// `window`, the latencies merged during it) in the timeline, for the plot.
pub fn spawn_progress(
    timeline: Arc<Timeline>,
    latency: Arc<Mutex<Histogram<u64>>>,
    window: Arc<Mutex<Histogram<u64>>>,
    message_bytes: u64,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let file_window = |timeline: &Timeline| {
            let mut window = window.lock().expect("window");
            let p99 = (!window.is_empty()).then(|| window.value_at_quantile(0.99));
            window.reset();
            timeline.push_p99(p99);
        };
        let mut next = timeline.start() + Duration::from_secs(1);
        while !done.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
                continue;
            }
            next += Duration::from_secs(1);
            file_window(&timeline);
            let rate = timeline.last_second();
            let total: u64 = timeline.buckets().iter().sum();
            let p99 = {
                let latency = latency.lock().expect("latency");
                if latency.is_empty() {
                    0
                } else {
                    latency.value_at_quantile(0.99)
                }
            };
            eprintln!(
                "{:>4.0} s  {rate} msg/s  {:.1} MB/s  p99 {p99} us  total {total}",
                timeline.start().elapsed().as_secs_f64(),
                (rate * message_bytes) as f64 / 1e6
            );
        }
        // The last, partial second.
        file_window(&timeline);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_second_files_its_own_p99_for_the_plot() {
        let run = Arc::new(Run::new(Duration::ZERO));
        let progress = run.progress(100);
        let mut local = latency_histogram();
        for _ in 0..100 {
            record(&mut local, 5_000);
        }
        run.merge(&mut local);
        std::thread::sleep(Duration::from_millis(1_500));
        for _ in 0..100 {
            record(&mut local, 300);
        }
        run.merge(&mut local);
        drop(progress);
        let p99s = run.timeline.p99_by_second();
        assert_eq!(p99s.len(), 2, "{p99s:?}");
        // Two significant digits: within 1% of what was recorded in that second only.
        assert!(
            p99s[0].is_some_and(|p99| (4_950..=5_050).contains(&p99)),
            "{p99s:?}"
        );
        assert!(
            p99s[1].is_some_and(|p99| (297..=303).contains(&p99)),
            "{p99s:?}"
        );
    }

    #[test]
    fn warm_up_work_is_not_measured() {
        let run = Run::new(Duration::from_millis(80));
        assert!(!run.measuring());
        run.count(10, 1000);
        let mut early = latency_histogram();
        record(&mut early, 5);
        assert_eq!(run.total(), 10);
        std::thread::sleep(Duration::from_millis(100));
        assert!(run.measuring());
        run.count(5, 500);
        std::thread::sleep(Duration::from_millis(20));
        run.count(1, 100);
        run.error();
        let summary = run.summary();
        assert_eq!(
            (summary.messages, summary.bytes, summary.errors),
            (6, 600, 1)
        );
        assert_eq!(run.total(), 16);
        // From the end of the warm-up (80 ms) to the last completion (~120 ms).
        assert!(
            (0.03..0.5).contains(&summary.seconds),
            "{}",
            summary.seconds
        );
        let from_first = run.summary_from_first_completion();
        assert!(from_first.seconds < summary.seconds && from_first.seconds >= 0.015);
        assert_eq!(run.timeline.buckets().iter().sum::<u64>(), 6);
    }

    #[test]
    fn budget_grants_whole_count_then_nothing() {
        let run = Run::new(Duration::ZERO);
        let budget = Budget {
            remaining: AtomicU64::new(250),
            deadline: None,
        };
        assert_eq!(budget.take(100, &run), 100);
        assert_eq!(budget.take(100, &run), 100);
        assert_eq!(budget.take(100, &run), 50);
        assert_eq!(budget.take(100, &run), 0);
        let timed = Budget {
            remaining: AtomicU64::new(0),
            deadline: Some(Instant::now() + Duration::from_millis(30)),
        };
        assert_eq!(timed.take(7, &run), 7);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(timed.take(7, &run), 0);
        let stopped = Budget {
            remaining: AtomicU64::new(10),
            deadline: None,
        };
        run.stop.store(true, Ordering::Relaxed);
        assert_eq!(stopped.take(1, &run), 0);
    }

    #[test]
    fn merged_histograms_give_the_combined_percentiles() {
        let mut a = latency_histogram();
        let mut b = latency_histogram();
        for v in 1..=900 {
            record(&mut a, v);
        }
        for v in 901..=1000 {
            record(&mut b, v);
        }
        a.add(&b).unwrap();
        let summary = Summary::new(1000, 100_000, 0, 2.0, &a);
        assert_eq!(summary.latency_us[5], 1000);
        assert!(
            (495..=505).contains(&summary.latency_us[0]),
            "{:?}",
            summary.latency_us
        );
        assert!(
            (985..=995).contains(&summary.latency_us[2]),
            "{:?}",
            summary.latency_us
        );
        assert_eq!(summary.messages_per_sec(), 500.0);
        let json = summary.json();
        assert!(json.starts_with("{\"messages\":1000,"), "{json}");
        assert!(json.contains("\"latency_us\":{\"p50\":"), "{json}");
        assert!(json.ends_with("}}"), "{json}");
    }

    #[test]
    fn out_of_range_samples_are_clamped_and_empty_is_zero() {
        let mut h = latency_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        let empty = Summary::new(0, 0, 0, 1.0, &latency_histogram());
        assert_eq!(empty.latency_us, [0; 6]);
    }
}
