#!/usr/bin/env bash
# The log cleaner under load (issue 16): its throughput, and what it costs producers. Each
# run starts a fresh broker (cleaner every second), creates a 2-partition topic with Kafka's
# TopicCommand, and produces keyed 100 B messages (spindle bench --keys: 4096 keys a
# partition, cycled, so almost every record is soon superseded) at a fixed rate, measuring
# the produce latency. The topic is compacted (cleanup.policy=compact, 16 MiB segments) or,
# as the control, deleted by retention (cleanup.policy=delete, same segments: the cleaner
# has nothing to do). The two alternate, ABBA. The cleaner's counters are read from the
# metrics endpoint at the end of each run. --bin NAME=PATH (repeatable) compares binaries,
# alternating them too; --policies limits the policies run. Writes perf/results/<label>.md.
#
#   perf/compaction.sh --label NAME [--rounds 2] [--rate 200000] [--secs 30]
#                      [--bin NAME=PATH]... [--policies "compact delete"]
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/compaction.sh $*"
label="" rounds=2 rate=200000 secs=30 bins=() policies="compact delete"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --label) label=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --secs) secs=$2; shift 2 ;;
    --bin) [[ $2 == *=* ]] || { echo "compaction.sh: --bin wants NAME=PATH" >&2; exit 2; }
      bins+=("$2"); shift 2 ;;
    --policies) policies=$2; shift 2 ;;
    *) echo "compaction.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "compaction.sh: --label is required" >&2; exit 2; }
[[ ${#bins[@]} -gt 0 ]] || bins=("spindle=target/release/spindle")
for named in "${bins[@]}"; do
  [[ -x ${named#*=} ]] || { echo "compaction.sh: ${named#*=} is not executable (cargo build --release)" >&2; exit 2; }
done
bench=target/release/spindle-bench
[[ -x "$bench" ]] || { echo "compaction.sh: $bench is missing (cargo build --release)" >&2; exit 2; }
perf/peers/kafka.sh setup >/dev/null
out=perf/results/$label.md
dir=target/bench-compaction
rows=()

metric() { # BODY NAME: the sum of NAME's samples
  awk -v name="$2" '$1 ~ "^"name"(\\{|$)" { sum += $2 } END { printf "%.3f", sum }' <<<"$1"
}

run() { # NAME=PATH POLICY
  local name=${1%%=*} bin=${1#*=} policy=$2
  rm -rf "$dir"; mkdir -p "$dir"
  "$bin" serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$dir/data" \
    --log-cleaner-backoff-ms 1000 > "$dir/broker.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$dir/broker.log" && break; sleep 0.1; done
  local bootstrap metrics
  bootstrap=$(head -1 "$dir/broker.log" | awk '{print $4}')
  metrics=$(grep -o 'metrics http://[^/]*' "$dir/broker.log" | head -1 | sed 's|metrics http://||')
  perf/peers/kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
    --create --topic keyed --partitions 2 --replication-factor 1 \
    --config cleanup.policy="$policy" --config segment.bytes=16777216 2>&1 | grep -q "^Created topic" ||
    { echo "compaction.sh: could not create the topic" >&2; kill "$pid"; exit 1; }
  local json
  json=$("$bench" produce --brokers "$bootstrap" --topic keyed --keys --message-bytes 100 \
    --throughput "$rate" --duration-secs "$secs" --json 2>/dev/null | tail -1)
  local body
  body=$(curl -s "http://$metrics/metrics")
  kill -TERM "$pid"; wait "$pid" || true
  local passes read_bytes seconds removed size
  passes=$(metric "$body" spindle_log_cleaner_passes_total)
  read_bytes=$(metric "$body" spindle_log_cleaner_read_bytes_total)
  seconds=$(metric "$body" spindle_log_cleaner_seconds_total)
  removed=$(metric "$body" spindle_log_cleaner_removed_records_total)
  size=$(metric "$body" spindle_partition_size_bytes)
  rows+=("$(python3 - "$policy [$name]" "$json" "$passes" "$read_bytes" "$seconds" "$removed" "$size" <<'EOF'
import json, sys
policy, raw, passes, read_bytes, seconds, removed, size = sys.argv[1:]
r = json.loads(raw)
lat = {k: v / 1000 for k, v in r.get("latency_us", {}).items()}
rate = float(read_bytes) / float(seconds) / 1e6 if float(seconds) > 0 else 0
print(f"| {policy} | {r['messages_per_sec']/1e3:.0f}k | {lat.get('p50', 0):.2f} | {lat.get('p99', 0):.2f} | "
      f"{lat.get('p999', 0):.2f} | {lat.get('max', 0):.1f} | {float(passes):.0f} | {float(read_bytes)/1e6:.0f} | "
      f"{float(seconds):.2f} | {rate:.0f} | {float(removed)/1e6:.2f} | {float(size)/1e6:.0f} |")
EOF
)")
  echo "${rows[-1]}"
}

read -r -a policy_list <<<"$policies"
for round in $(seq "$rounds"); do
  order=()
  for named in "${bins[@]}"; do
    for policy in "${policy_list[@]}"; do order+=("$named $policy"); done
  done
  if (( round % 2 == 0 )); then
    for (( i = ${#order[@]} - 1; i >= 0; i-- )); do read -r named policy <<<"${order[$i]}"; run "$named" "$policy"; done
  else
    for item in "${order[@]}"; do read -r named policy <<<"$item"; run "$named" "$policy"; done
  fi
done
rm -rf "$dir"
{
  echo "# The log cleaner under load: $label"
  echo
  echo "Command: \`$command_line\`"
  echo
  echo "- cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernel $(uname -r)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)'); brokers: ${bins[*]}, each \`serve --log-cleaner-backoff-ms 1000\`"
  echo "- load: spindle bench produce --keys (4096 keys a partition), 100 B, $rate msg/s for $secs s, acks=1, 2 partitions, 16 MiB segments"
  echo
  echo "| cleanup.policy | produced msg/s | p50 ms | p99 ms | p99.9 ms | max ms | cleaner passes | cleaner read MB | cleaner s | cleaner MB/s | records removed (M) | log size at end MB |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} > "$out"
echo "wrote $out"
