#!/usr/bin/env bash
# The metrics endpoint with many partitions (issue 16): a fresh broker, one topic of
# --partitions partitions (created with `spindle topic create`), then --scrapes scrapes of
# /metrics, each timed by curl, with the body's size and the broker's RSS. Writes
# perf/results/<label>.md.
#
#   perf/metrics-scrape.sh --label NAME [--partitions 10000] [--scrapes 5] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/metrics-scrape.sh $*"
label="" partitions=10000 scrapes=5 bin=target/release/spindle
while [[ $# -gt 0 ]]; do
  case "$1" in
    --label) label=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --scrapes) scrapes=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "metrics-scrape.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "metrics-scrape.sh: --label is required" >&2; exit 2; }
[[ -x "$bin" ]] || { echo "metrics-scrape.sh: $bin is not executable (cargo build --release)" >&2; exit 2; }
dir=target/bench-metrics-scrape
rm -rf "$dir"; mkdir -p "$dir"
"$bin" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$dir/data" > "$dir/broker.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$dir/broker.log" && break; sleep 0.1; done
bootstrap=$(head -1 "$dir/broker.log" | awk '{print $4}')
metrics=$(grep -o 'metrics http://[^/]*' "$dir/broker.log" | head -1 | sed 's|metrics http://||')
started=$(date +%s.%N)
"$bin" topic create many -p "$partitions" --brokers "$bootstrap" > /dev/null
created=$(date +%s.%N)
sleep 2 # the gauges are copied once a second
rows=()
for i in $(seq "$scrapes"); do
  read -r seconds bytes < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://$metrics/metrics")
  rss=$(awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
  rows+=("| $i | $(awk -v s="$seconds" 'BEGIN { printf "%.1f", s * 1000 }') | $(( bytes / 1024 )) | $rss |")
  sleep 1
done
{
  echo "# The metrics endpoint with $partitions partitions: $label"
  echo
  echo "Command: \`$command_line\`"
  echo
  echo "- cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernel $(uname -r)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'); broker: $bin serve (2 cores)"
  echo "- creating the topic took $(awk -v a="$started" -v b="$created" 'BEGIN { printf "%.1f", b - a }') s"
  echo
  echo "| scrape | time ms | body KiB | broker RSS MiB |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "perf/results/$label.md"
cat "perf/results/$label.md"
