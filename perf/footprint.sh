#!/usr/bin/env bash
# What a broker holds while clients hold it: resident memory and reserved disk as many
# partitions fill (the per-core cache budget and segment preallocation), and resident
# memory per idle connection. Runs each listed broker binary in turn and writes one
# Markdown report.
#
#   perf/footprint.sh --label NAME [--partitions "1000 10000"] [--fill-bytes 3000000000]
#                     [--connections 10000] [--broker-flags "..."] NAME=BINARY...
#
# For each binary and partition count: a fresh broker (2 cores, target/bench-footprint),
# `spindle bench produce` of --fill-bytes in 1 KiB messages over that many partitions
# (the first binary's bench, so only the broker differs), RSS sampled every second (peak
# and at the end) and the data directory's allocated size. Then, on a fresh broker, N idle
# connections are opened and held (Python, from 127.0.0.1): RSS before and after, per
# connection. Results: perf/results/NAME.md.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/footprint.sh $*"
label="" partitions="1000 10000" fill=3000000000 connections=10000 broker_flags=""
binaries=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --label) label=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --fill-bytes) fill=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --broker-flags) broker_flags=$2; shift 2 ;;
    *=*) binaries+=("$1"); shift ;;
    *) echo "footprint.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" && ${#binaries[@]} -ge 1 ]] || { echo "footprint.sh: --label and NAME=BINARY required" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
generator=${binaries[0]#*=}
data=target/bench-footprint
rows=$(mktemp)
broker=""
stop() { [[ -z "$broker" ]] || { kill -TERM "$broker"; wait "$broker" || true; broker=""; }; rm -rf "$data"; }
trap stop EXIT
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
start() { # binary extra-flags...
  local bin=$1; shift
  rm -rf "$data"; log=$(mktemp)
  # shellcheck disable=SC2086
  "$bin" serve --listen 127.0.0.1:0 --cores 2 --data-dir "$data" $broker_flags "$@" > "$log" 2>&1 &
  broker=$!
  for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
  bootstrap=$(head -1 "$log" | awk '{print $4}')
}

for spec in "${binaries[@]}"; do
  name=${spec%%=*} bin=${spec#*=}
  for count in $partitions; do
    start "$bin" --max-connections-per-core 65536
    peak=0
    "$generator" bench produce --brokers "$bootstrap" --topic footprint --partitions "$count" \
      --message-bytes 1024 --messages $((fill / 1024)) --batch-bytes 16384 --in-flight 64 \
      > /dev/null 2>&1 &
    load=$!
    while kill -0 "$load" 2>/dev/null; do
      rss=$(rss_kib "$broker"); (( rss > peak )) && peak=$rss
      echo "$name $count partitions: rss $((rss / 1024)) MiB" >&2
      sleep 1
    done
    wait "$load" || echo "footprint.sh: the load for $name/$count failed" >&2
    end=$(rss_kib "$broker")
    disk=$(du -sk "$data" | cut -f1)
    printf 'partitions\t%s\t%s\t%s\t%s\t%s\n' "$name" "$count" "$peak" "$end" "$disk" >> "$rows"
    stop
  done
  per_ip=()
  "$bin" serve --help | grep -q -- --max-connections-per-ip && per_ip=(--max-connections-per-ip 65536)
  start "$bin" --max-connections-per-core 65536 "${per_ip[@]}"
  before=$(rss_kib "$broker")
  port=${bootstrap##*:}
  held=$(python3 - "$port" "$connections" "$broker" <<'PY'
import socket, sys, time
port, count, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
held = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    held.append(s)
time.sleep(3)
rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
print(len(held), rss)
PY
)
  after=${held#* }
  printf 'idle\t%s\t%s\t%s\t%s\n' "$name" "${held% *}" "$before" "$after" >> "$rows"
  stop
done

python3 - "$rows" "perf/results/${label}.md" "$command_line" "$(git rev-parse --short HEAD)" "$fill" <<'PY'
import os, platform, sys
rows, out, command, commit, fill = sys.argv[1:]
L = [f"# Broker footprint: memory and disk under many partitions, memory per idle connection\n",
     f"Command: `{command}` (measured at commit {commit}; {os.cpu_count()} cores, kernel {platform.release()})\n",
     f"## {int(fill) / 1e9:.1f} GB of 1 KiB messages over many partitions\n",
     "| broker | partitions | peak RSS MiB | RSS at end MiB | data dir on disk GiB |", "|---|---|---|---|---|"]
idle = ["\n## Idle connections\n", "| broker | connections held | RSS before MiB | RSS with them MiB | KiB per connection |",
        "|---|---|---|---|---|"]
for line in open(rows):
    f = line.rstrip("\n").split("\t")
    if f[0] == "partitions":
        _, name, count, peak, end, disk = f
        L.append(f"| {name} | {count} | {int(peak) / 1024:,.0f} | {int(end) / 1024:,.0f} | {int(disk) / 1048576:,.1f} |")
    else:
        _, name, held, before, after = f
        per = (int(after) - int(before)) / max(int(held), 1)
        idle.append(f"| {name} | {held} | {int(before) / 1024:,.0f} | {int(after) / 1024:,.0f} | {per:.1f} |")
open(out, "w").write("\n".join(L + idle) + "\n")
print("\n".join(L + idle))
PY
rm -f "$rows"
