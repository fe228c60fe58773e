//! `spindle top`: a live terminal view of a broker's metrics endpoint (issue 16): requests
//! per second and the interval's p99 per API, traffic per topic, lag per group,
//! connections, partitions and under-replicated ones, refreshed every interval. It reads `GET /metrics` like any scraper, so it
//! runs anywhere that reaches the endpoint. Runs on the main thread of the `spindle`
//! process; nothing of the broker is linked in.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

#[derive(Debug, Args)]
pub struct TopArgs {
    /// The broker's metrics endpoint (its --metrics-listen).
    #[arg(long, default_value = "127.0.0.1:9644")]
    metrics: String,
    /// Milliseconds between refreshes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    interval_ms: u64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    iterations: Option<u64>,
    /// Print each refresh below the last instead of redrawing the screen.
    #[arg(long)]
    plain: bool,
}

/// One sample of the exposition text: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape, and when it was taken.
struct Scrape {
    at: Instant,
    samples: Vec<Sample>,
}

pub fn top(args: &TopArgs) -> ExitCode {
    let interval = Duration::from_millis(args.interval_ms);
    let mut previous: Option<Scrape> = None;
    let mut shown = 0u64;
    loop {
        let scrape = match fetch(&args.metrics) {
            Ok(text) => Scrape {
                at: Instant::now(),
                samples: parse(&text),
            },
            Err(reason) => {
                eprintln!("spindle: top: {}: {reason}", args.metrics);
                return ExitCode::from(1);
            }
        };
        let view = render(&args.metrics, previous.as_ref(), &scrape);
        let mut stdout = std::io::stdout();
        if !args.plain {
            // Home and clear: redraw in place.
            let _ = write!(stdout, "\x1b[H\x1b[2J");
        }
        if writeln!(stdout, "{view}").is_err() {
            return ExitCode::SUCCESS; // the reader went away
        }
        let _ = stdout.flush();
        shown += 1;
        if args.iterations.is_some_and(|n| shown >= n) {
            return ExitCode::SUCCESS;
        }
        previous = Some(scrape);
        std::thread::sleep(interval);
    }
}

/// `GET /metrics` from `address`: the body, or why not.
fn fetch(address: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(5);
    let socket = std::net::ToSocketAddrs::to_socket_addrs(address)
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .take(64 << 20)
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("not an HTTP answer")?;
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200 ") {
        return Err(format!("answered {status:?}"));
    }
    Ok(body.to_string())
}

/// The samples of Prometheus's text format (comments skipped; a malformed line ignored).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}')?;
                    let labels = rest
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .filter_map(|pair| {
                            let (key, value) = pair.split_once("=\"")?;
                            Some((key.to_string(), value.trim_end_matches('"').to_string()))
                        })
                        .collect();
                    (name, labels)
                }
            };
            Some(Sample {
                name: name.to_string(),
                labels,
                value,
            })
        })
        .collect()
}

/// Sum of the samples named `name`, grouped by the value of `label`.
fn sum_by(samples: &[Sample], name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.name == name) {
        let key = sample.labels.get(label).cloned().unwrap_or_default();
        *sums.entry(key).or_insert(0.0) += sample.value;
    }
    sums
}

/// Per API: the latency buckets summed over cores, `le` ascending (+Inf last).
fn latency_buckets(samples: &[Sample]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut by_api: BTreeMap<String, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for sample in samples
        .iter()
        .filter(|s| s.name == "spindle_request_latency_seconds_bucket")
    {
        let (Some(api), Some(le)) = (sample.labels.get("api"), sample.labels.get("le")) else {
            continue;
        };
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        let entry = by_api
            .entry(api.clone())
            .or_default()
            .entry(bound.to_bits())
            .or_insert((bound, 0.0));
        entry.1 += sample.value;
    }
    by_api
        .into_iter()
        .map(|(api, buckets)| {
            let mut buckets: Vec<(f64, f64)> = buckets.into_values().collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            (api, buckets)
        })
        .collect()
}

/// The smallest bucket bound holding `quantile` of the observations between two cumulative
/// bucket lists (`None` without observations).
fn quantile_bound(now: &[(f64, f64)], before: &[(f64, f64)], quantile: f64) -> Option<f64> {
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|&(bound, count)| {
            let earlier = before.iter().find(|b| b.0 == bound).map_or(0.0, |b| b.1);
            (bound, count - earlier)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    delta
        .iter()
        .find(|(_, count)| *count >= quantile * total)
        .map(|(bound, _)| *bound)
}

fn human_bytes(per_second: f64) -> String {
    match per_second {
        b if b >= 1e9 => format!("{:.2} GB/s", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB/s", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB/s", b / 1e3),
        b => format!("{b:.0} B/s"),
    }
}

fn render(address: &str, previous: Option<&Scrape>, now: &Scrape) -> String {
    let seconds = previous.map(|p| now.at.duration_since(p.at).as_secs_f64().max(1e-3));
    let rate = |name: &str, label: &str| -> BTreeMap<String, Option<f64>> {
        let current = sum_by(&now.samples, name, label);
        let before = previous.map(|p| sum_by(&p.samples, name, label));
        current
            .into_iter()
            .map(|(key, value)| {
                let per_second = before.as_ref().zip(seconds).map(|(before, seconds)| {
                    (value - before.get(&key).copied().unwrap_or(0.0)).max(0.0) / seconds
                });
                (key, per_second)
            })
            .collect()
    };
    let shown = |value: Option<f64>, format: &dyn Fn(f64) -> String| {
        value.map_or_else(|| "-".to_string(), format)
    };
    let mut out = format!(
        "spindle top: {address}  (rates over the last refresh; '-' until the second one)\n\n"
    );
    let connections: f64 = sum_by(&now.samples, "spindle_connections", "core")
        .values()
        .sum();
    let partitions = now
        .samples
        .iter()
        .filter(|s| s.name == "spindle_partition_size_bytes")
        .count();
    let stored: f64 = now
        .samples
        .iter()
        .filter(|s| s.name == "spindle_partition_size_bytes")
        .map(|s| s.value)
        .sum();
    out.push_str(&format!(
        "connections {connections:.0}   partition replicas {partitions}   stored {:.1} MB\n\n",
        stored / 1e6
    ));
    out.push_str(&format!(
        "{:<22} {:>12} {:>14}\n",
        "API", "requests/s", "p99 (bucket)"
    ));
    let buckets_now = latency_buckets(&now.samples);
    let buckets_before = previous.map(|p| latency_buckets(&p.samples));
    for (api, per_second) in rate("spindle_requests_total", "api") {
        let p99 = buckets_now.get(&api).and_then(|now| {
            let before = buckets_before
                .as_ref()?
                .get(&api)
                .cloned()
                .unwrap_or_default();
            quantile_bound(now, &before, 0.99)
        });
        let p99 = match p99 {
            Some(bound) if bound.is_infinite() => "> 10 s".to_string(),
            Some(bound) => format!("<= {:.2} ms", bound * 1000.0),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{api:<22} {:>12} {p99:>14}\n",
            shown(per_second, &|v| format!("{v:.0}"))
        ));
    }
    out.push_str(&format!(
        "\n{:<30} {:>12} {:>12} {:>12}\n",
        "topic", "in", "records/s", "out"
    ));
    let bytes_in = rate("spindle_topic_bytes_in_total", "topic");
    let records_in = rate("spindle_topic_records_in_total", "topic");
    let bytes_out = rate("spindle_topic_bytes_out_total", "topic");
    for (topic, per_second) in &bytes_in {
        out.push_str(&format!(
            "{topic:<30} {:>12} {:>12} {:>12}\n",
            shown(*per_second, &human_bytes),
            shown(records_in.get(topic).copied().flatten(), &|v| format!(
                "{v:.0}"
            )),
            shown(bytes_out.get(topic).copied().flatten(), &human_bytes),
        ));
    }
    let lag = sum_by(&now.samples, "spindle_group_lag", "group");
    if !lag.is_empty() {
        out.push_str(&format!("\n{:<30} {:>12}\n", "group", "lag"));
        for (group, records) in lag {
            out.push_str(&format!("{group:<30} {records:>12.0}\n"));
        }
    }
    let under: f64 = sum_by(&now.samples, "spindle_under_replicated_partitions", "core")
        .values()
        .sum();
    if under > 0.0 {
        out.push_str(&format!("\nunder-replicated partitions: {under:.0}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP spindle_requests Requests.\n\
        # TYPE spindle_requests counter\n\
        spindle_requests_total{core=\"0\",api=\"Produce\",version=\"9\"} 10\n\
        spindle_requests_total{core=\"1\",api=\"Produce\",version=\"9\"} 5\n\
        spindle_request_latency_seconds_bucket{le=\"0.001\",core=\"0\",api=\"Produce\"} 90\n\
        spindle_request_latency_seconds_bucket{le=\"0.01\",core=\"0\",api=\"Produce\"} 99\n\
        spindle_request_latency_seconds_bucket{le=\"+Inf\",core=\"0\",api=\"Produce\"} 100\n\
        spindle_topic_bytes_in_total{topic=\"a.b-c\"} 2000000\n\
        spindle_connections{core=\"0\"} 3\n\
        spindle_group_lag{group=\"g1\",topic=\"a.b-c\",partition=\"0\"} 7\n\
        spindle_group_lag{group=\"g1\",topic=\"a.b-c\",partition=\"1\"} 5\n";

    #[test]
    fn the_exposition_text_parses_into_samples_and_sums() {
        let samples = parse(TEXT);
        assert_eq!(samples.len(), 9);
        assert_eq!(samples[0].labels["api"], "Produce");
        assert_eq!(
            sum_by(&samples, "spindle_requests_total", "api")["Produce"],
            15.0
        );
        assert_eq!(
            sum_by(&samples, "spindle_topic_bytes_in_total", "topic")["a.b-c"],
            2e6
        );
        let buckets = latency_buckets(&samples);
        assert_eq!(
            buckets["Produce"],
            vec![(0.001, 90.0), (0.01, 99.0), (f64::INFINITY, 100.0)]
        );
        // 99 of 100 at or below 10 ms; none before.
        assert_eq!(quantile_bound(&buckets["Produce"], &[], 0.99), Some(0.01));
        assert_eq!(
            quantile_bound(&buckets["Produce"], &buckets["Produce"], 0.99),
            None
        );
    }

    #[test]
    fn rates_come_from_two_scrapes() {
        let start = Instant::now();
        let before = Scrape {
            at: start,
            samples: parse(TEXT),
        };
        let later = TEXT.replace("} 2000000", "} 4000000");
        let now = Scrape {
            at: start + Duration::from_secs(2),
            samples: parse(&later),
        };
        let first = render("x", None, &before);
        assert!(first.contains("connections 3"), "{first}");
        // A group's lag is summed over its partitions.
        assert!(
            first
                .lines()
                .any(|l| l.starts_with("g1") && l.ends_with(" 12")),
            "{first}"
        );
        let view = render("x", Some(&before), &now);
        // 2 MB more over 2 s.
        assert!(view.contains("1.0 MB/s"), "{view}");
        assert!(view.contains("Produce"), "{view}");
    }
}
