//! `--plot FILE.svg`: the latency percentile curve and throughput over time of a run, as a
//! self-contained SVG drawn with `plotters` (ticks, grid lines and units on both axes, a
//! log latency axis on request). Client threads only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Messages counted per 100 ms since the start of a run: throughput over time, for the
/// progress line and the plot. Shared by the threads of a run.
pub struct Timeline {
    start: Instant,
    buckets: Mutex<Vec<u64>>,
    /// The p99 latency (us) of each second since the start, `None` for a second in which
    /// nothing completed; filed by the run's progress thread.
    p99s: Mutex<Vec<Option<u64>>>,
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
            p99s: Mutex::new(Vec::new()),
        }
    }

    /// Files the p99 of the next second.
    pub fn push_p99(&self, p99_us: Option<u64>) {
        self.p99s.lock().expect("timeline").push(p99_us);
    }

    /// The p99 (us) of each second so far.
    pub fn p99_by_second(&self) -> Vec<Option<u64>> {
        self.p99s.lock().expect("timeline").clone()
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

/// How the latency axis is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyScale {
    Linear,
    /// Log-scaled: the median and the tail both stay readable when they are decades apart.
    Log,
}

/// Highest percentile drawn, as decades of 1/(1-percentile): 5 is p99.999.
const DECADES: f64 = 5.0;

/// An SVG with two panels, drawn with `plotters`: the latency percentile curve on
/// HdrHistogram's log-scaled 1/(1-percentile) axis (latency in ms, linear or log), and
/// messages per second over time (s) with each second's p99 on a second axis. Both with
/// tick labels, grid lines and units.
pub fn plot_svg(
    title: &str,
    latency: &Histogram<u64>,
    timeline: &[u64],
    p99_by_second: &[Option<u64>],
    scale: LatencyScale,
) -> Result<String, String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 18))
            .map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(550);
        percentile_panel(&left, latency, scale).map_err(|e| e.to_string())?;
        throughput_panel(&right, timeline, p99_by_second).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// `(decades, latency ms)` along the percentile axis, 50 points per decade.
fn percentile_points(latency: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=(50.0 * DECADES) as u32)
        .map(|i| {
            let x = f64::from(i) / 50.0;
            let quantile = 1.0 - 10f64.powf(-x);
            let micros = if latency.is_empty() {
                0
            } else {
                latency.value_at_quantile(quantile)
            };
            (x, micros as f64 / 1000.0)
        })
        .collect()
}

/// A tick on the percentile axis: decades of 1/(1-p) as the percentile they stand for.
pub(crate) fn percentile_label(decades: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-decades));
    let digits = (decades - 2.0).ceil().clamp(0.0, 6.0) as usize;
    format!("{percent:.digits$}%")
}

type Area<'a> =
    plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'a>, plotters::coord::Shift>;
type PlotResult<'a> = Result<
    (),
    plotters::drawing::DrawingAreaErrorKind<
        <plotters::prelude::SVGBackend<'a> as plotters::prelude::DrawingBackend>::ErrorType,
    >,
>;

fn percentile_panel<'a>(
    area: &Area<'a>,
    latency: &Histogram<u64>,
    scale: LatencyScale,
) -> PlotResult<'a> {
    use plotters::prelude::*;
    let points = percentile_points(latency);
    let highest = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let caption = "latency by percentile";
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let style = ShapeStyle::from(&BLUE).stroke_width(2);
    match scale {
        LatencyScale::Linear => {
            let mut chart =
                builder.build_cartesian_2d(0f64..DECADES, 0f64..(highest * 1.05).max(0.001))?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| percentile_label(*x))
                .x_desc("percentile")
                .y_desc("latency (ms)")
                .draw()?;
            chart.draw_series(LineSeries::new(points, style))?;
        }
        LatencyScale::Log => {
            // A log axis needs a positive floor: the smallest latency drawn, or 1 us.
            let lowest = points
                .iter()
                .map(|p| p.1)
                .filter(|v| *v > 0.0)
                .fold(f64::MAX, f64::min)
                .min(highest)
                .max(0.001);
            let top = (highest * 1.2).max(lowest * 10.0);
            let mut chart =
                builder.build_cartesian_2d(0f64..DECADES, (lowest * 0.8..top).log_scale())?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| percentile_label(*x))
                .x_desc("percentile")
                .y_desc("latency (ms, log scale)")
                .draw()?;
            chart.draw_series(LineSeries::new(
                points.into_iter().map(|(x, y)| (x, y.max(lowest))),
                style,
            ))?;
        }
    }
    Ok(())
}

fn throughput_panel<'a>(
    area: &Area<'a>,
    timeline: &[u64],
    p99_by_second: &[Option<u64>],
) -> PlotResult<'a> {
    use plotters::prelude::*;
    let bucket_secs = TIMELINE_BUCKET.as_secs_f64();
    let points: Vec<(f64, f64)> = timeline
        .iter()
        .enumerate()
        .map(|(i, &n)| (i as f64 * bucket_secs, n as f64 / bucket_secs))
        .collect();
    // Each second's p99 (ms), drawn at the middle of its second.
    let p99s: Vec<(f64, f64)> = p99_by_second
        .iter()
        .enumerate()
        .filter_map(|(i, p99)| p99.map(|us| (i as f64 + 0.5, us as f64 / 1000.0)))
        .collect();
    let seconds = (timeline.len() as f64 * bucket_secs)
        .max(p99_by_second.len() as f64)
        .max(bucket_secs);
    let highest = points.iter().map(|p| p.1).fold(1.0, f64::max);
    let highest_p99 = p99s.iter().map(|p| p.1).fold(0.001, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("throughput and p99 over time", ("sans-serif", 14))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0f64..seconds, 0f64..highest * 1.05)?
        .set_secondary_coord(0f64..seconds, 0f64..highest_p99 * 1.1);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("messages/s")
        .y_label_formatter(&|v| rate_label(*v))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("p99 latency (ms)")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            points,
            ShapeStyle::from(&RED).stroke_width(2),
        ))?
        .label("messages/s")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
    let green = RGBColor(0, 140, 60);
    chart
        .draw_secondary_series(LineSeries::new(
            p99s,
            ShapeStyle::from(&green).stroke_width(2),
        ))?
        .label("p99 of each second")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], green));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

/// A rate tick: 1.5M, 250k, 900.
pub(crate) fn rate_label(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.1}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{latency_histogram, record};

    #[test]
    fn timeline_counts_per_bucket_and_the_plot_is_an_svg_with_labelled_axes() {
        let timeline = Timeline::new(Instant::now());
        timeline.add(5);
        timeline.add(7);
        assert_eq!(timeline.buckets().iter().sum::<u64>(), 12);
        let mut latency = latency_histogram();
        for v in 1..=1000 {
            record(&mut latency, v * 10);
        }
        for scale in [LatencyScale::Linear, LatencyScale::Log] {
            let p99s = [Some(900), None, Some(2500)];
            let svg = plot_svg("a <test>", &latency, &timeline.buckets(), &p99s, scale).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("a &lt;test&gt;"), "the title, escaped");
            for text in [
                "percentile",
                "latency (ms",
                "time (s)",
                "messages/s",
                "99.9%",
            ] {
                assert!(svg.contains(text), "{scale:?}: no {text:?}");
            }
            // The three curves (and the legend's two strokes), and grid lines beside them.
            assert!(svg.matches("<polyline").count() >= 3, "{scale:?}");
            assert!(svg.matches("<line").count() > 10, "{scale:?}: no grid");
        }
        assert!(plot_svg("empty", &latency_histogram(), &[], &[], LatencyScale::Log).is_ok());
    }

    #[test]
    fn percentile_ticks_read_as_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
        assert_eq!(rate_label(1_500_000.0), "1.5M");
        assert_eq!(rate_label(250_000.0), "250k");
        // Plot titles name acks as a Kafka user writes them, not as a debug name.
        assert_eq!(crate::Acks::Leader.to_string(), "acks=1");
        assert_eq!(crate::Acks::All.to_string(), "acks=all");
    }
}
