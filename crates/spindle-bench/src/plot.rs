//! `--plot FILE.svg`: the latency percentile curve and throughput over time of a run, as a
//! self-contained SVG (no plotting crate: two polylines and their axes). Client threads only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Messages counted per 100 ms since the start of a run: throughput over time, for the
/// progress line and the plot. Shared by the threads of a run.
pub struct Timeline {
    start: Instant,
    buckets: Mutex<Vec<u64>>,
}

/// Width of one timeline bucket.
pub const TIMELINE_BUCKET: Duration = Duration::from_millis(100);

impl Timeline {
    /// When bucket 0 began.
    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn new(start: Instant) -> Timeline {
        Timeline {
            start,
            buckets: Mutex::new(Vec::new()),
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
mod tests {
    use super::*;
    use crate::stats::{latency_histogram, record};

    #[test]
    fn timeline_counts_per_bucket_and_the_plot_is_an_svg() {
        let timeline = Timeline::new(Instant::now());
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
