//! Bench statistics: latency histograms (HdrHistogram, microseconds, 3 significant
//! digits) merged across threads, and the summary a run prints (also as one JSON line).

use hdrhistogram::Histogram;

/// Latencies up to an hour are recorded exactly enough; longer ones saturate.
const LATENCY_US_MAX: u64 = 3_600_000_000;

pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// Records `micros`, clamped into the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
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
        let [p50, p90, p99, p999, p9999, max] = self.latency_us;
        format!(
            "{{\"messages\":{},\"bytes\":{},\"seconds\":{:.6},\"messages_per_sec\":{:.1},\"bytes_per_sec\":{:.1},\"errors\":{},\"latency_us\":{{\"p50\":{p50},\"p90\":{p90},\"p99\":{p99},\"p999\":{p999},\"p9999\":{p9999},\"max\":{max}}}}}",
            self.messages,
            self.bytes,
            self.seconds,
            self.messages_per_sec(),
            self.bytes_per_sec(),
            self.errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
