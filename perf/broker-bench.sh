#!/usr/bin/env bash
# Produce and consume throughput and latency of the whole broker, measured with
# `spindle bench produce|consume` (native engine) on this machine, next to the raw
# direct-write bandwidth measured in the same run. Writes perf/results/broker-<date>-<host>.md.
#
#   perf/broker-bench.sh [--duration-secs N]     (default 10 per produce case)
#
# Broker and generator share the machine (as issue 5's targets assume). The data directory
# is target/bench-broker (O_DIRECT-capable filesystem), emptied before each case.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=10
if [[ "${1:-}" == "--duration-secs" ]]; then duration=$2; fi
date=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || echo host)
out="perf/results/broker-${date}-${host}.md"
cargo build --release --quiet
cargo bench --bench storage --no-run --quiet 2>/dev/null || cargo bench --bench storage --no-run
bin=target/release/spindle
data=target/bench-broker
raw=$(mktemp)
cargo bench --bench storage --quiet -- --cases raw-1m-x4 --gib 2 --rounds 1 --markdown "$raw" >/dev/null
raw_gbs=$(grep '^| raw-1m-x4' "$raw" | awk -F'|' '{gsub(/ /,"",$3); print $3}')
{
  echo "# Broker benchmark, ${date}, ${host}"
  echo
  echo "Command: \`perf/broker-bench.sh --duration-secs ${duration}\`"
  echo
  echo "- cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- kernel: $(uname -r)"
  echo "- data filesystem: $(df -T target | tail -1 | awk '{print $2}') on $(df --output=source target | tail -1)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
  echo "- raw direct write (DmaFile, 1 MiB buffers, 4 in flight, same run): ${raw_gbs} GB/s"
  echo "- broker: \`spindle serve --cores $(nproc)\` (one broker per core), generator on the same machine"
  echo
  echo "| case | flush | messages/s | MB/s | of raw | p50 us | p99 us | p99.9 us | max us | errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$out"
run_case() { # name flush partitions message_bytes acks
  local name=$1 flush=$2 partitions=$3 bytes=$4 acks=$5
  rm -rf "$data"
  local log; log=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" --flush "$flush" > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local bootstrap; bootstrap=$(head -1 "$log" | awk '{print $4}')
  local json
  json=$("$bin" bench produce --brokers "$bootstrap" --topic "$name" --partitions "$partitions" \
    --message-bytes "$bytes" --acks "$acks" --duration-secs "$duration" --batch-bytes 262144 --json | tail -1)
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$log"
  python3 - "$name" "$flush" "$json" "$raw_gbs" >> "$out" <<'PY'
import json, sys
name, flush, line, raw = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
r = json.loads(line); l = r["latency_us"]
mbs = r["bytes_per_sec"] / 1e6
print(f"| {name} | {flush} | {r['messages_per_sec']:,.0f} | {mbs:,.0f} | {mbs / 1000 / raw:.0%} | {l['p50']} | {l['p99']} | {l['p999']} | {l['max']} | {r['errors']} |")
PY
}
consume_case() { # name messages passes: produce 1 KiB messages, then read them back
  local name=$1 messages=$2 passes=$3
  rm -rf "$data"
  local log; log=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" > "$log" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local bootstrap; bootstrap=$(head -1 "$log" | awk '{print $4}')
  "$bin" bench produce --brokers "$bootstrap" --topic "$name" --partitions 2 --message-bytes 1024 \
    --messages "$messages" --batch-bytes 262144 > /dev/null
  local json
  json=$("$bin" bench consume --brokers "$bootstrap" --topic "$name" --passes "$passes" --json | tail -1)
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$log"
  python3 - "$name" "$json" >> "$consumed" <<'PY'
import json, sys
name, line = sys.argv[1], sys.argv[2]
r = json.loads(line); l = r["latency_us"]
print(f"| {name} | {r['messages_per_sec']:,.0f} | {r['bytes_per_sec'] / 1e6:,.0f} | {l['p50']} | {l['p99']} | {l['max']} | {r['errors']} |")
PY
}
consumed=$(mktemp)
{
  echo
  echo "| consume case | messages/s | MB/s (batch bytes) | fetch p50 us | fetch p99 us | max us | errors |"
  echo "|---|---|---|---|---|---|---|"
} > "$consumed"
# Memory: 40 MB over 2 partitions fits the logs' 32 MiB caches; read 50 times.
consume_case memory-1k 40000 50
# Disk: 4 GB, far past the caches, read once.
consume_case disk-1k 4000000 1
run_case p2-100b-acks1 interval 2 100 1
run_case p8-100b-acks1 interval 8 100 1
run_case p2-1k-acks1 interval 2 1024 1
run_case p2-1k-all-interval interval 2 1024 all
run_case p2-1k-all-always always 2 1024 all
cat "$consumed" >> "$out"
rm -rf "$data" "$raw" "$consumed"
{
  echo
  echo "Latency is per Produce request (send to answer), with 8 requests in flight per"
  echo "connection and 256 KiB batches: it measures the broker's answer time under saturation,"
  echo "not end-to-end delivery (that is \`spindle bench e2e\`, not written yet). Consume"
  echo "cases read from offset 0 to the high watermark with one 16 MiB Fetch in flight per"
  echo "core; MB/s counts stored batch bytes."
} >> "$out"
cat "$out"
