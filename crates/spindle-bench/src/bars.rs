//! `spindle-bench bars`: the runs `perf/peer-compare.sh` records (one line per case, broker
//! and round) as one chart, so brokers or commits sit side by side. One panel per case,
//! each with its own axis and unit: a bar per broker at the median of its runs, every run a
//! dot, and a whisker from the lowest run to the highest (the spread).
//!
//! Runs on the client side only, after a benchmark; nothing here touches a broker.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct BarsArgs {
    /// The runs: tab-separated lines `case, broker, round, figures, CPU s/GB, RSS MiB`,
    /// figures being the case's numbers separated by spaces (empty for a failed run), as
    /// `perf/peer-compare.sh` writes them to `perf/results/LABEL.tsv`.
    #[arg(value_name = "RUNS.tsv")]
    pub runs: PathBuf,
    /// The chart to write: FILE.svg, or FILE.png (drawn from the same SVG).
    #[arg(long, value_name = "FILE.svg|FILE.png")]
    pub out: PathBuf,
    /// The chart's title.
    #[arg(long, default_value = "brokers side by side")]
    pub title: String,
}

impl BarsArgs {
    /// Checks the flags; `Err` is a one-line reason.
    pub fn validate(&self) -> Result<(), String> {
        crate::chart::check_extension(&self.out)
    }

    /// Reads the runs and writes the chart.
    pub fn run(&self) -> Result<(), String> {
        let path = self.runs.display();
        let text = std::fs::read_to_string(&self.runs).map_err(|e| format!("{path}: {e}"))?;
        let cases = read_runs(&text).map_err(|e| format!("{path}: {e}"))?;
        let svg = bars_svg(&self.title, &cases)?;
        crate::chart::write(&self.out, &svg)
    }
}

/// What one case's panel shows, chosen from the figures its runs print.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// The first figure: messages (or round trips) per second; higher is better.
    MessagesPerSec,
    /// The fourth of five (rate, MB/s, p50, p99, p99.9): p99 latency in ms at a fixed
    /// rate; lower is better.
    P99Ms,
}

impl Measure {
    fn of(figures: &[f64]) -> Measure {
        if figures.len() == 5 {
            Measure::P99Ms
        } else {
            Measure::MessagesPerSec
        }
    }

    fn pick(self, figures: &[f64]) -> f64 {
        match self {
            Measure::MessagesPerSec => figures[0],
            Measure::P99Ms => figures[3],
        }
    }

    fn axis(self) -> &'static str {
        match self {
            Measure::MessagesPerSec => "messages/s (higher is better)",
            Measure::P99Ms => "p99 latency, ms (lower is better)",
        }
    }
}

/// One case: its measure and, per broker in first-seen order, the value of each run that
/// succeeded (a failed run has none and shows as a missing dot).
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub measure: Measure,
    pub brokers: Vec<(String, Vec<f64>)>,
}

/// Parses the runs file. Lines that are not six tab-separated fields, or whose figures are
/// not numbers, are refused with their line number.
pub fn read_runs(text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() != 6 {
            return Err(format!(
                "line {}: expected 6 tab-separated fields, found {}",
                index + 1,
                fields.len()
            ));
        }
        let (name, broker, figures) = (fields[0], fields[1], fields[3]);
        let figures: Vec<f64> = figures
            .split_whitespace()
            .map(|f| f.parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("line {}: figures {figures:?} are not numbers", index + 1))?;
        let position = match cases.iter().position(|c| c.name == name) {
            Some(position) => position,
            None => {
                cases.push(Case {
                    name: name.to_string(),
                    measure: Measure::MessagesPerSec,
                    brokers: Vec::new(),
                });
                cases.len() - 1
            }
        };
        let case = &mut cases[position];
        let runs = match case.brokers.iter().position(|(b, _)| b == broker) {
            Some(i) => &mut case.brokers[i].1,
            None => {
                case.brokers.push((broker.to_string(), Vec::new()));
                &mut case.brokers.last_mut().expect("just pushed").1
            }
        };
        if figures.is_empty() {
            continue; // a failed run
        }
        let measure = Measure::of(&figures);
        if !runs.is_empty() && case.measure != measure {
            return Err(format!(
                "line {}: case {name} mixes figure shapes",
                index + 1
            ));
        }
        case.measure = measure;
        runs.push(measure.pick(&figures));
    }
    if cases.is_empty() {
        return Err("no runs".into());
    }
    Ok(cases)
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Panels per row.
const COLUMNS: usize = 3;
const PANEL_WIDTH: u32 = 400;
const PANEL_HEIGHT: u32 = 300;

/// The chart as SVG: a grid of panels, one per case.
pub fn bars_svg(title: &str, cases: &[Case]) -> Result<String, String> {
    use plotters::prelude::*;
    let columns = cases.len().clamp(1, COLUMNS);
    let rows = cases.len().div_ceil(columns).max(1);
    let size = (
        PANEL_WIDTH * columns as u32,
        PANEL_HEIGHT * rows as u32 + 40,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?;
        let panels = root.split_evenly((rows, columns));
        for (case, panel) in cases.iter().zip(panels.iter()) {
            draw_case(panel, case).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

type Area<'a> =
    plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'a>, plotters::coord::Shift>;
type PanelResult<'a> = Result<
    (),
    plotters::drawing::DrawingAreaErrorKind<
        <plotters::prelude::SVGBackend<'a> as plotters::prelude::DrawingBackend>::ErrorType,
    >,
>;

fn draw_case<'a>(area: &Area<'a>, case: &Case) -> PanelResult<'a> {
    use plotters::prelude::*;
    let brokers = case.brokers.len().max(1);
    let highest = case
        .brokers
        .iter()
        .flat_map(|(_, runs)| runs.iter().copied())
        .fold(0.0, f64::max);
    let top = if highest > 0.0 { highest * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&case.name, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(62)
        .build_cartesian_2d((0..brokers as i32 - 1).into_segmented(), 0f64..top)?;
    let names: Vec<String> = case.brokers.iter().map(|(b, _)| b.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(case.measure.axis())
        .y_label_formatter(&|v| value_label(*v))
        .draw()?;
    for (i, (_, runs)) in case.brokers.iter().enumerate() {
        let i = i as i32;
        let color = Palette99::pick(i as usize).to_rgba();
        let Some(middle) = median(runs) else {
            continue;
        };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), middle),
            ],
            color.mix(0.55).filled(),
        );
        bar.set_margin(0, 0, 22, 22);
        chart.draw_series(std::iter::once(bar))?;
        let low = runs.iter().copied().fold(f64::MAX, f64::min);
        let high = runs.iter().copied().fold(0.0, f64::max);
        let center = || SegmentValue::CenterOf(i);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(center(), low), (center(), high)],
            BLACK.stroke_width(2),
        )))?;
        chart.draw_series(
            runs.iter()
                .map(|&v| Circle::new((center(), v), 4, BLACK.filled())),
        )?;
    }
    Ok(())
}

/// A value tick: a rate's (1.5M, 250k, 900), or one decimal below 100 (3.2 ms).
fn value_label(value: f64) -> String {
    if value >= 100.0 {
        crate::plot::rate_label(value)
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: &str = "produce\tspindle\t1\t300 30 1 2\t1.0\t90\n\
                        produce\tkafka\t1\t200 20 1 2\t2.0\t500\n\
                        produce\tkafka\t2\t\t2.0\t500\n\
                        produce\tspindle\t2\t340 34 1 2\t1.0\t90\n\
                        e2e\tspindle\t1\t10000 1.0 0.4 1.25 3.0\t4\t30\n\
                        e2e\tkafka\t1\t10000 1.0 0.9 4.5 9.0\t9\t400\n";

    #[test]
    fn runs_group_by_case_and_broker_and_pick_their_measure() {
        let cases = read_runs(RUNS).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].measure, Measure::MessagesPerSec);
        assert_eq!(
            cases[0].brokers,
            vec![
                ("spindle".to_string(), vec![300.0, 340.0]),
                ("kafka".to_string(), vec![200.0]),
            ],
            "a failed run has no value"
        );
        assert_eq!(cases[1].measure, Measure::P99Ms);
        assert_eq!(cases[1].brokers[1].1, vec![4.5]);
        assert_eq!(median(&[340.0, 300.0]), Some(320.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_chart_has_a_panel_per_case_with_bars_spread_and_units() {
        let svg = bars_svg("side <by> side", &read_runs(RUNS).unwrap()).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("side &lt;by&gt; side"), "the title, escaped");
        for text in [
            "produce",
            "e2e",
            "spindle",
            "kafka",
            "messages/s (higher is better)",
            "p99 latency, ms (lower is better)",
        ] {
            assert!(svg.contains(text), "no {text:?}");
        }
        // Three runs with values in the first case and two in the second: a dot each.
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
        // Four bars (two per case), beside the background rectangles.
        assert!(svg.matches("<rect").count() >= 4);
    }

    #[test]
    fn what_is_not_a_runs_file_is_refused_with_its_line() {
        assert!(read_runs("").is_err());
        let error = read_runs("a\tb\t1\t1 2\t3\t4\nbad line\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        let error = read_runs("a\tb\t1\tone two\t3\t4\n").unwrap_err();
        assert!(error.contains("not numbers"), "{error}");
        let mixed = "a\tb\t1\t1 2\t3\t4\na\tb\t2\t1 2 3 4 5\t3\t4\n";
        assert!(read_runs(mixed).unwrap_err().contains("mixes"));
    }
}
