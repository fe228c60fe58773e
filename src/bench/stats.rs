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

/// Messages counted per 100 ms since the start of a run: throughput over time, for the
/// progress line and the plot. Shared by the threads of a run.
pub struct Timeline {
    start: std::time::Instant,
    buckets: std::sync::Mutex<Vec<u64>>,
}

/// Width of one timeline bucket.
pub const TIMELINE_BUCKET: std::time::Duration = std::time::Duration::from_millis(100);

impl Timeline {
    pub fn new(start: std::time::Instant) -> Timeline {
        Timeline {
            start,
            buckets: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Counts `messages` at the current time.
    pub fn add(&self, messages: u64) {
        let index = (self.start.elapsed().as_millis() / TIMELINE_BUCKET.as_millis()) as usize;
        let mut buckets = self.buckets.lock().expect("timeline");
        if buckets.len() <= index {
            buckets.resize(index + 1, 0);
        }
        buckets[index] += messages;
    }

    /// Messages per bucket so far.
    pub fn buckets(&self) -> Vec<u64> {
        self.buckets.lock().expect("timeline").clone()
    }

    /// Messages counted in the last full second.
    pub fn last_second(&self) -> u64 {
        let now = (self.start.elapsed().as_millis() / TIMELINE_BUCKET.as_millis()) as usize;
        let buckets = self.buckets.lock().expect("timeline");
        let per_second = (1000 / TIMELINE_BUCKET.as_millis()) as usize;
        (now.saturating_sub(per_second)..now)
            .filter_map(|i| buckets.get(i))
            .sum()
    }
}

/// An SVG with two panels: the latency percentile curve on HdrHistogram's log-scaled
/// 1/(1-percentile) axis, and throughput over time.
pub fn plot_svg(title: &str, latency: &Histogram<u64>, timeline: &[u64]) -> String {
    const W: f64 = 520.0;
    const H: f64 = 360.0;
    const PAD: f64 = 50.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"14\">{}</text>\n",
        2.0 * W,
        H + 20.0,
        escape(title)
    );
    // Left: latency by percentile. x = log10(1 / (1 - q)) from 0 (p0) to 5 (p99.999).
    let decades = 5.0;
    let points: Vec<(f64, f64)> = (0..=250)
        .map(|i| {
            let x = decades * f64::from(i) / 250.0;
            let q = 1.0 - 10f64.powf(-x);
            let value = if latency.is_empty() {
                0
            } else {
                latency.value_at_quantile(q)
            };
            (x, value as f64)
        })
        .collect();
    let max_latency = points.iter().map(|p| p.1).fold(1.0, f64::max);
    panel(
        &mut svg,
        0.0,
        "latency (us) by percentile",
        &["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"],
        max_latency,
    );
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| {
            format!(
                "{:.1},{:.1}",
                PAD + x / decades * (W - 2.0 * PAD),
                H - PAD - y / max_latency * (H - 2.0 * PAD) + 20.0
            )
        })
        .collect();
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
        path.join(" ")
    ));
    // Right: messages per second over time.
    let per_second: Vec<f64> = timeline
        .iter()
        .map(|&n| n as f64 * 1000.0 / TIMELINE_BUCKET.as_millis() as f64)
        .collect();
    let max_rate = per_second.iter().copied().fold(1.0, f64::max);
    let seconds = timeline.len() as f64 * TIMELINE_BUCKET.as_secs_f64();
    panel(
        &mut svg,
        W,
        "messages/s over time (s)",
        &["0", &format!("{seconds:.1}")],
        max_rate,
    );
    let path: Vec<String> = per_second
        .iter()
        .enumerate()
        .map(|(i, rate)| {
            format!(
                "{:.1},{:.1}",
                W + PAD + i as f64 / per_second.len().max(1) as f64 * (W - 2.0 * PAD),
                H - PAD - rate / max_rate * (H - 2.0 * PAD) + 20.0
            )
        })
        .collect();
    svg.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"{}\"/>\n</svg>\n",
        path.join(" ")
    ));
    svg
}

/// Axes, x tick labels spread evenly, and the y maximum of one panel at horizontal offset
/// `left`.
fn panel(svg: &mut String, left: f64, label: &str, x_ticks: &[&str], y_max: f64) {
    const W: f64 = 520.0;
    const H: f64 = 360.0;
    const PAD: f64 = 50.0;
    let (x0, x1, y0, y1) = (left + PAD, left + W - PAD, H - PAD + 20.0, PAD + 20.0);
    svg.push_str(&format!(
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"black\"/>\n<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"black\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.0}</text>\n<text x=\"{}\" y=\"{y0}\" text-anchor=\"end\">0</text>\n",
        (x0 + x1) / 2.0,
        H + 12.0,
        escape(label),
        x0 - 4.0,
        y1 + 4.0,
        y_max,
        x0 - 4.0,
    ));
    let steps = (x_ticks.len().max(2) - 1) as f64;
    for (i, tick) in x_ticks.iter().enumerate() {
        let x = x0 + i as f64 / steps * (x1 - x0);
        svg.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            y0 + 14.0,
            escape(tick)
        ));
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod plot_tests {
    use super::*;

    #[test]
    fn timeline_counts_per_bucket_and_the_plot_is_an_svg() {
        let timeline = Timeline::new(std::time::Instant::now());
        timeline.add(5);
        timeline.add(7);
        assert_eq!(timeline.buckets().iter().sum::<u64>(), 12);
        let mut latency = latency_histogram();
        for v in 1..=1000 {
            record(&mut latency, v);
        }
        let svg = plot_svg("a <test>", &latency, &timeline.buckets());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;test&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
    }
}

/// Prints a progress line to stderr every second until `done`: the last second's rate,
/// MB/s, the p99 so far and the total.
pub fn spawn_progress(
    timeline: std::sync::Arc<Timeline>,
    latency: std::sync::Arc<std::sync::Mutex<Histogram<u64>>>,
    message_bytes: u64,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = timeline.start + std::time::Duration::from_secs(1);
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let now = std::time::Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(std::time::Duration::from_millis(50)));
                continue;
            }
            next += std::time::Duration::from_secs(1);
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
                timeline.start.elapsed().as_secs_f64(),
                (rate * message_bytes) as f64 / 1e6
            );
        }
    })
}
