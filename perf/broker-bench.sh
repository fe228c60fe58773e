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
# Which code this measures, taken before this script rewrites its own (tracked) results.
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
date=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || echo host)
out="perf/results/broker-${date}-${host}.md"
artifacts="perf/results/broker-${date}-${host}"   # one JSON line and one SVG plot per case
rm -rf "$artifacts"; mkdir -p "$artifacts"
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
  echo "- commit: ${commit}"
  echo "- raw direct write (DmaFile, 1 MiB buffers, 4 in flight, same run): ${raw_gbs} GB/s"
  echo "- broker: \`spindle serve --cores $(nproc)\` (one broker per core), generator on the same machine"
  echo
  echo "| case | flush | messages/s | MB/s | of raw | GB written | p50 us | p99 us | p99.9 us | max us | errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$out"
# A fresh broker on an empty data directory; sets $bootstrap, $broker_pid, $broker_log.
start_broker() {
  rm -rf "$data"
  broker_log=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" "$@" > "$broker_log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$broker_log" && break; sleep 0.1; done
  bootstrap=$(head -1 "$broker_log" | awk '{print $4}')
}
stop_broker() {
  kill -TERM "$broker_pid"; wait "$broker_pid" || true
  rm -f "$broker_log"
}
run_case() { # name flush partitions message_bytes acks
  local name=$1 flush=$2 partitions=$3 bytes=$4 acks=$5
  start_broker --flush "$flush"
  local json
  json=$("$bin" bench produce --brokers "$bootstrap" --topic "$name" --partitions "$partitions" \
    --message-bytes "$bytes" --acks "$acks" --duration-secs "$duration" --batch-bytes 262144 \
    --plot "$artifacts/$name.svg" --json 2>/dev/null | tail -1)
  echo "$json" > "$artifacts/$name.json"
  stop_broker
  python3 - "$name" "$flush" "$json" "$raw_gbs" >> "$out" <<'PY'
import json, sys
name, flush, line, raw = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
r = json.loads(line); l = r["latency_us"]
mbs = r["bytes_per_sec"] / 1e6
print(f"| {name} | {flush} | {r['messages_per_sec']:,.0f} | {mbs:,.0f} | {mbs / 1000 / raw:.0%} | {r['bytes'] / 1e9:.1f} | {l['p50']} | {l['p99']} | {l['p999']} | {l['max']} | {r['errors']} |")
PY
}
consume_case() { # name messages passes: produce 1 KiB messages, then read them back
  local name=$1 messages=$2 passes=$3
  start_broker
  "$bin" bench produce --brokers "$bootstrap" --topic "$name" --partitions 2 --message-bytes 1024 \
    --messages "$messages" --batch-bytes 262144 > /dev/null 2>&1
  local json
  json=$("$bin" bench consume --brokers "$bootstrap" --topic "$name" --passes "$passes" \
    --plot "$artifacts/$name.svg" --json 2>/dev/null | tail -1)
  echo "$json" > "$artifacts/$name.json"
  stop_broker
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
e2e_case() { # name message_bytes: the e2e generator's own peak, then 50% of it
  local name=$1 bytes=$2
  start_broker
  local peak half json
  peak=$("$bin" bench e2e --brokers "$bootstrap" --topic "$name-peak" --partitions 2 --message-bytes "$bytes" \
    --batch-bytes 65536 --duration-secs 5 --json 2>/dev/null | tail -1)
  half=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["messages_per_sec"] / 2))' "$peak")
  json=$("$bin" bench e2e --brokers "$bootstrap" --topic "$name" --partitions 2 --message-bytes "$bytes" \
    --batch-bytes 65536 --duration-secs "$duration" --throughput "$half" \
    --plot "$artifacts/$name.svg" --json 2>/dev/null | tail -1)
  echo "$json" > "$artifacts/$name.json"
  stop_broker
  python3 - "$name" "$peak" "$half" "$json" >> "$e2e" <<'PY'
import json, sys
name, peak, half, line = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
r = json.loads(line); l = r["latency_us"]
print(f"| {name} | {peak['messages_per_sec']:,.0f} | {int(half):,} | {r['messages_per_sec']:,.0f} | {l['p50']} | {l['p90']} | {l['p99']} | {l['p999']} | {l['p9999']} | {l['max']} | {r['errors']} |")
PY
}
e2e=$(mktemp)
{
  echo
  echo "| e2e case (acks=1, 64 KiB batches) | generator peak msg/s | target msg/s (50%) | achieved msg/s | p50 us | p90 us | p99 us | p99.9 us | p99.99 us | max us | errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$e2e"
e2e_case e2e-100b 100
e2e_case e2e-1k 1024
run_case p2-100b-acks1 interval 2 100 1
run_case p8-100b-acks1 interval 8 100 1
run_case p2-1k-acks1 interval 2 1024 1
run_case p8-1k-acks1 interval 8 1024 1
run_case p2-1k-all-interval interval 2 1024 all
run_case p2-1k-all-always always 2 1024 all
cat "$consumed" "$e2e" >> "$out"
rm -rf "$data" "$raw" "$consumed" "$e2e"
{
  echo
  echo "Produce latency is per request (send to answer), with 8 requests in flight per"
  echo "connection and 256 KiB batches: the broker's answer time under saturation, not"
  echo "end-to-end delivery (the e2e table has that). Consume"
  echo "cases read from offset 0 to the high watermark with one 16 MiB Fetch in flight per"
  echo "core; MB/s counts stored batch bytes. E2e cases: the e2e generator (one request in"
  echo "flight per connection, batches built at send time) is run unthrottled for 5 s to find"
  echo "its own peak, then at half of it; latency is per message, send to consume. Per-case JSON"
  echo "and SVG plots (latency percentiles, throughput over time): \`${artifacts}/\`."
} >> "$out"
cat "$out"
