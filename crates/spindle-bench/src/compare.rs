//! Runs side by side (issue 14): `--percentiles-out FILE.hgrm` keeps a run's latency
//! distribution in HdrHistogram's percentile-distribution text (the `.hgrm` that
//! HdrHistogram's own plotter and most latency tools read), and `spindle-bench plot`
//! overlays several such files on one percentile chart, so two brokers (Spindle and Kafka)
//! or two commits sit on one picture. Client side only; no broker involved.

use std::path::PathBuf;

use clap::Args;
use hdrhistogram::Histogram;

use crate::plot::LatencyScale;

/// `spindle-bench plot`: overlay the latency percentile curves of several runs.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// Runs to draw, each LABEL=FILE.hgrm (written by a bench's --percentiles-out, or any
    /// HdrHistogram percentile distribution in ms).
    #[arg(required = true, value_name = "LABEL=FILE")]
    pub runs: Vec<String>,
    /// The chart to write: FILE.svg, or FILE.png.
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub out: PathBuf,
    /// The chart's title.
    #[arg(long, default_value = "latency by percentile")]
    pub title: String,
    /// The latency axis: linear, or log.
    #[arg(long, value_enum, default_value_t = LatencyScale::Linear)]
    pub latency_scale: LatencyScale,
}

/// One run's curve: `(percentile as a fraction, latency ms)`, percentiles ascending.
pub type Curve = Vec<(f64, f64)>;

impl PlotArgs {
    /// Checks the flags; `Err` is a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        crate::chart::check_extension(&self.out)?;
        for run in &self.runs {
            match run.split_once('=') {
                Some((label, file)) if !label.is_empty() && !file.is_empty() => {}
                _ => return Err(format!("{run:?}: expected LABEL=FILE")),
            }
        }
        Ok(())
    }

    /// Reads every run and writes the overlay.
    pub fn run(&self) -> Result<(), String> {
        let mut curves = Vec::with_capacity(self.runs.len());
        for run in &self.runs {
            let (label, file) = run.split_once('=').expect("validated");
            let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
            curves.push((
                label.to_string(),
                read_hgrm(&text).map_err(|e| format!("{file}: {e}"))?,
            ));
        }
        let svg = overlay_svg(&self.title, &curves, self.latency_scale)?;
        crate::chart::write(&self.out, &svg)
    }
}

/// `histogram` (microseconds) as HdrHistogram's percentile distribution, values in ms:
/// five ticks per halving of the distance to 100%, then the summary lines.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut count = 0u64;
    for step in histogram.iter_quantiles(5) {
        count += step.count_since_last_iteration();
        let quantile = step.quantile_iterated_to();
        let inverse = if quantile < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - quantile))
        } else {
            format!("{:>14}", "inf")
        };
        out.push_str(&format!(
            "{:>12.3} {:>2.12} {:>10} {inverse}\n",
            step.value_iterated_to() as f64 / 1000.0,
            quantile,
            count
        ));
    }
    out.push_str(&format!(
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]\n#[Max     = {:>12.3}, Total count    = {:>12}]\n",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0,
        histogram.max() as f64 / 1000.0,
        histogram.len()
    ));
    out
}

/// The `(percentile, value)` rows of a percentile distribution: lines of four numbers
/// (value, percentile as a fraction, count, 1/(1-percentile)); headers, blank lines and
/// `#` summaries are skipped.
pub fn read_hgrm(text: &str) -> Result<Curve, String> {
    let mut curve = Curve::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 4 || line.trim_start().starts_with('#') {
            continue;
        }
        let (Ok(value), Ok(percentile)) = (fields[0].parse::<f64>(), fields[1].parse::<f64>())
        else {
            continue; // the header row
        };
        if !(0.0..=1.0).contains(&percentile) || !value.is_finite() || value < 0.0 {
            return Err(format!("not a percentile distribution row: {line:?}"));
        }
        curve.push((percentile, value));
    }
    if curve.is_empty() {
        return Err("no percentile rows (expected HdrHistogram's .hgrm text)".into());
    }
    Ok(curve)
}

/// Decades of 1/(1-percentile) drawn: up to p99.999.
const DECADES: f64 = 5.0;

/// One chart with every run's percentile curve, a color and a legend entry each.
pub fn overlay_svg(
    title: &str,
    curves: &[(String, Curve)],
    scale: LatencyScale,
) -> Result<String, String> {
    use plotters::prelude::*;
    let to_x = |percentile: f64| (-(1.0 - percentile).max(1e-12).log10()).min(DECADES);
    let points: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(label, curve)| {
            let points = curve
                .iter()
                .filter(|(p, _)| to_x(*p) <= DECADES)
                .map(|&(p, v)| (to_x(p), v))
                .collect();
            (label.clone(), points)
        })
        .collect();
    let values = || points.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let highest = values().fold(0.001, f64::max);
    let lowest = values()
        .filter(|v| *v > 0.0)
        .fold(highest, f64::min)
        .max(0.001);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(14)
            // The last tick label (99.999%) is centred on the right edge.
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(60);
        let label_x = |x: &f64| crate::plot::percentile_label(*x);
        macro_rules! draw {
            ($chart:expr, $y_desc:expr, $floor:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_labels(6)
                    .x_label_formatter(&label_x)
                    .x_desc("percentile")
                    .y_desc($y_desc)
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (i, (label, run)) in points.iter().enumerate() {
                    let color = Palette99::pick(i).to_rgba();
                    chart
                        .draw_series(LineSeries::new(
                            run.iter().map(|&(x, y)| (x, y.max($floor))),
                            ShapeStyle::from(&color).stroke_width(2),
                        ))
                        .map_err(|e| e.to_string())?
                        .label(label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }};
        }
        match scale {
            LatencyScale::Linear => draw!(
                builder
                    .build_cartesian_2d(0f64..DECADES, 0f64..highest * 1.05)
                    .map_err(|e| e.to_string())?,
                "latency (ms)",
                0.0
            ),
            LatencyScale::Log => draw!(
                builder
                    .build_cartesian_2d(
                        0f64..DECADES,
                        (lowest * 0.8..(highest * 1.2).max(lowest * 10.0)).log_scale()
                    )
                    .map_err(|e| e.to_string())?,
                "latency (ms, log scale)",
                lowest
            ),
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{latency_histogram, record};

    #[test]
    fn a_distribution_written_reads_back_and_two_runs_overlay() {
        let mut fast = latency_histogram();
        let mut slow = latency_histogram();
        for v in 1..=10_000u64 {
            record(&mut fast, v); // 1 us .. 10 ms
            record(&mut slow, v * 3);
        }
        let text = hgrm(&fast);
        assert!(text.starts_with("       Value"), "{text}");
        assert!(text.contains("#[Max     ="), "{text}");
        let curve = read_hgrm(&text).unwrap();
        assert!(
            curve.windows(2).all(|w| w[0].0 <= w[1].0),
            "percentiles ascend"
        );
        let median = curve.iter().find(|(p, _)| *p >= 0.5).unwrap().1;
        assert!((4.9..=5.1).contains(&median), "median {median} ms");
        assert!((curve.last().unwrap().1 - 10.0).abs() < 0.02, "max in ms");
        let runs = vec![
            ("spindle".to_string(), curve),
            ("kafka".to_string(), read_hgrm(&hgrm(&slow)).unwrap()),
        ];
        for scale in [LatencyScale::Linear, LatencyScale::Log] {
            let svg = overlay_svg("two <runs>", &runs, scale).unwrap();
            assert!(svg.contains("spindle") && svg.contains("kafka"), "legend");
            assert!(
                svg.contains("99.99%") && svg.contains("latency (ms"),
                "axes"
            );
            assert!(svg.matches("<polyline").count() >= 2, "two curves");
        }
    }

    #[test]
    fn what_is_not_a_percentile_distribution_is_refused() {
        assert!(read_hgrm("").is_err());
        assert!(read_hgrm("hello world\n").is_err());
        assert!(
            read_hgrm("1.0 1.5 10 2.0\n").is_err(),
            "a percentile above 1"
        );
        let args = |runs: &[&str], out: &str| PlotArgs {
            runs: runs.iter().map(|r| r.to_string()).collect(),
            out: out.into(),
            title: "t".into(),
            latency_scale: LatencyScale::Linear,
        };
        assert!(args(&["a=x.hgrm"], "o.svg").validate().is_ok());
        assert!(args(&["x.hgrm"], "o.svg").validate().is_err());
        assert!(args(&["a=x.hgrm"], "o.png").validate().is_ok());
        assert!(args(&["a=x.hgrm"], "o.jpg").validate().is_err());
    }
}
