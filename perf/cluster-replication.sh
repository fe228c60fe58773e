#!/usr/bin/env bash
# Replication's cost (issue 13): three Spindle nodes on this machine (one core each, fresh
# data dirs under target/perf-cluster), librdkafka's rdkafka_performance producing to a
# 6-partition topic with one replica and acks=1, then with three replicas and acks=all
# (min.insync.replicas 2), at 100 B and 1 KiB; then the end-to-end latency of
# `spindle-bench e2e --engine rdkafka` at a fixed rate on each. Cases alternate RF 1 and
# RF 3 (ABBA over rounds), each on a fresh cluster. Writes perf/results/<label>.md.
# With --broker NAME=PATH (twice or more), it compares those spindle binaries instead,
# each at RF 3 acks=all, alternating binaries case by case in the same way.
#
#   perf/cluster-replication.sh --label NAME [--rounds 2] [--e2e-rate 20000]
#                               [--broker NAME=PATH --broker NAME=PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/cluster-replication.sh $*"
rounds=2 label="" e2e_rate=20000 binaries=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --broker) binaries+=("$2"); shift 2 ;;
    --label) label=$2; shift 2 ;;
    --e2e-rate) e2e_rate=$2; shift 2 ;;
    *) echo "cluster-replication.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "cluster-replication.sh: --label is required" >&2; exit 2; }
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
tool=$(perf/peers/rdkafka-performance.sh)
cargo build --release --workspace --quiet
spindle=target/release/spindle bench=target/release/spindle-bench
for binary in "${binaries[@]}"; do
  [[ $binary == *=* && -x ${binary#*=} ]] || { echo "cluster-replication.sh: --broker $binary: expected NAME=PATH to a spindle binary" >&2; exit 2; }
done
root=target/perf-cluster
pids=()

start_cluster() {
  stop_cluster
  rm -rf "$root"; mkdir -p "$root"
  local quorum="0@127.0.0.1:19391,1@127.0.0.1:19392,2@127.0.0.1:19393"
  for node in 0 1 2; do
    "$spindle" serve --node-id "$node" --quorum "$quorum" --listen "127.0.0.1:$((19300 + node * 10))" --metrics-listen 127.0.0.1:0 \
      --cores 1 --no-pin --data-dir "$root/node-$node" > "$root/node-$node.log" 2>&1 &
    pids+=($!)
  done
  bootstrap="127.0.0.1:19300,127.0.0.1:19310,127.0.0.1:19320"
  for node in 0 1 2; do
    for _ in $(seq 100); do
      grep -q "spindle listening" "$root/node-$node.log" 2>/dev/null && break
      sleep 0.1
    done
  done
}
stop_cluster() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_cluster EXIT
create_topic() { # name replicas
  /usr/bin/python3 - "$bootstrap" "$1" "$2" <<'EOF'
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, name, replicas = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
topic = NewTopic(name, 6, replicas, config={"min.insync.replicas": "2" if replicas == 3 else "1"})
admin.create_topics([topic])[name].result(10)
for _ in range(100):
    md = admin.list_topics(name, timeout=5).topics[name]
    if len(md.partitions) == 6 and all(p.leader >= 0 for p in md.partitions.values()):
        break
    time.sleep(0.1)
EOF
}
produce() { # topic size count acks
  timeout 300 "$tool" -P -t "$1" -b "$bootstrap" -s "$2" -c "$3" -a "$4" -q -X linger.ms=5 2>&1 |
    grep 'messages produced' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1 \2/'
}
e2e() { # topic acks
  local acks=$2; [[ $acks == -1 ]] && acks=all
  timeout 120 "$bench" e2e --engine rdkafka --brokers "${bootstrap%%,*}" --topic "$1" --message-bytes 100 \
    --throughput "$e2e_rate" --acks "$acks" --linger-ms 1 --duration-secs 10 --warmup-secs 2 --json 2>/dev/null |
    tail -1 | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); l=d["latency_us"]; print(l["p50"], l["p99"], l["p999"], round(d["messages_per_sec"]))'
}
results=$(mktemp)
cases=("rf1-acks1|1 1|$spindle" "rf3-acksall|3 -1|$spindle")
if ((${#binaries[@]} > 0)); then
  cases=()
  for binary in "${binaries[@]}"; do cases+=("${binary%%=*}-rf3-acksall|3 -1|${binary#*=}"); done
fi
for ((round = 1; round <= rounds; round++)); do
  order=("${cases[@]}")
  if ((round % 2 == 0)); then
    order=()
    for ((i = ${#cases[@]} - 1; i >= 0; i--)); do order+=("${cases[$i]}"); done
  fi
  for case in "${order[@]}"; do
    IFS='|' read -r name settings spindle <<< "$case"
    read -r replicas acks <<< "$settings"
    for size_count in "100 2000000" "1024 500000"; do
      read -r size count <<< "$size_count"
      start_cluster
      topic="$name-$size-$round"
      create_topic "$topic" "$replicas"
      figures=$(produce "$topic" "$size" "$count" "$acks")
      echo "$name ${size}B round $round: ${figures:-failed}" >&2
      printf 'produce %s %sB\t%s\t%s\n' "$name" "$size" "$round" "${figures:-}" >> "$results"
    done
    start_cluster
    create_topic "e2e-$name-$round" "$replicas"
    latency=$(e2e "e2e-$name-$round" "$acks" || true)
    echo "$name e2e at $e2e_rate msg/s round $round: ${latency:-failed}" >&2
    printf 'e2e %s\t%s\t%s\n' "$name" "$round" "${latency:-}" >> "$results"
  done
done
stop_cluster
/usr/bin/python3 - "$results" "perf/results/$label.md" "$commit" "$command_line" "$e2e_rate" <<'EOF'
import statistics, sys
from collections import defaultdict
results, out, commit, command, rate = sys.argv[1:]
rows = defaultdict(list)
for line in open(results):
    name, _round, figures = line.rstrip("\n").split("\t")
    rows[name].append(figures.split() if figures else None)
lines = [f"# Replication on 3 nodes of this machine: {', '.join(dict.fromkeys(n.split()[-2] if n.startswith('produce') else n.split()[-1] for n in rows))}\n",
         f"Command: `{command}`\n", f"- commit: {commit}; 3 nodes x 1 core, 6 partitions, "
         "rdkafka_performance -X linger.ms=5; e2e: spindle-bench e2e --engine rdkafka, 100 B, "
         f"{rate} msg/s\n",
         "| case | runs | median |", "|---|---|---|"]
for name, runs in rows.items():
    ok = [r for r in runs if r]
    if name.startswith("produce"):
        shown = " / ".join(f"{float(r[0])/1e6:.2f} M msg/s, {float(r[1]):.0f} MB/s" if r else "failed" for r in runs)
        median = f"{statistics.median(float(r[0]) for r in ok)/1e6:.2f} M msg/s" if ok else "-"
    else:
        shown = " / ".join(f"p50 {r[0]} us, p99 {r[1]} us, p99.9 {r[2]} us"
                           + (f" (consumed {int(r[3]):,} msg/s)" if len(r) > 3 else "")
                           if r else "failed" for r in runs)
        median = f"p99 {statistics.median(float(r[1]) for r in ok):.0f} us" if ok else "-"
    lines.append(f"| {name} | {shown} | {median} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
