#!/usr/bin/env bash
# librdkafka's rdkafka_performance against Spindle (or any broker), with the client's own
# defaults: the measurement users make with their own tools (issue 15). Each workload runs
# on a fresh broker and topic; rounds repeat the whole list. Writes
# perf/results/<label>.md with every run, each workload's median, and the raw direct-write
# bandwidth of the data disk measured in the same run (raw-1m-x4, before and after).
#
#   perf/rdkafka-performance.sh --label NAME [--rounds 3] [--brokers HOST:PORT]
#                               [--broker-flags "..."] [--extra "-X linger.ms=5 ..."]
#                               [--only REGEX] [--broker NAME=KIND]...
#
# --only keeps the workloads whose name matches. --broker (repeatable) compares brokers:
# KIND is spindle[:BINARY], kafka or tansu (perf/lib/brokers.sh). Each workload runs on each
# of them in turn, every broker fresh, the order reversed every other round (ABBA, since
# this machine's disk drifts), and every row is labelled with the broker's NAME. Without it,
# target/release/spindle runs. Every topic is created with 2 partitions before its run.
#
# Workloads (2 partitions): produce 100 B acks=1 (2 M messages), 1000 B acks=1 (1 M),
# 100 B acks=all (2 M); consume (consumer group, from the earliest offset) 100 B (2 M) and
# 1000 B (1 M) after filling the topic with the producer. --extra adds rdkafka_performance
# flags to every run (as a user would set linger.ms or batch.size).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/rdkafka-performance.sh $*"
rounds=3 label="" external="" broker_flags="" extra="" only="" brokers=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --brokers) external=$2; shift 2 ;;
    --broker-flags) broker_flags=$2; shift 2 ;;
    --extra) extra=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --broker) [[ $2 == *=* ]] || { echo "rdkafka-performance.sh: --broker wants NAME=KIND" >&2; exit 2; }
      brokers+=("$2"); shift 2 ;;
    *) echo "rdkafka-performance.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "rdkafka-performance.sh: --label is required" >&2; exit 2; }
[[ ${#brokers[@]} -gt 0 ]] || brokers=("spindle=spindle")
# shellcheck source=perf/lib/brokers.sh
source perf/lib/brokers.sh
for broker in "${brokers[@]}"; do broker_check "$broker"; done
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
tool=$(perf/peers/rdkafka-performance.sh)
cargo build --release --workspace --quiet
cargo bench --bench storage --no-run --quiet 2>/dev/null || cargo bench --bench storage --no-run
raw_bandwidth() {
  local raw; raw=$(mktemp)
  cargo bench --bench storage --quiet -- --cases raw-1m-x4 --gib 2 --rounds 1 --markdown "$raw" >/dev/null
  grep '^| raw-1m-x4' "$raw" | awk -F'|' '{gsub(/ /,"",$3); print $3}'
  rm -f "$raw"
}
start_broker() {
  if [[ -n "$external" ]]; then bootstrap=$external; return; fi
  broker_start "$1"
}
stop_broker() { [[ -n "$external" ]] || broker_stop; }
trap stop_broker EXIT
# `rate MSGS_PER_SEC MB_PER_SEC` from rdkafka_performance's last summary line.
produce() { # topic size count acks
  # shellcheck disable=SC2086
  timeout 300 "$tool" -P -t "$1" -b "$bootstrap" -s "$2" -c "$3" -a "$4" -q $extra 2>&1 |
    grep 'messages produced' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1 \2/'
}
consume() { # topic count
  # shellcheck disable=SC2086
  timeout 300 "$tool" -G "group-$1" -t "$1" -b "$bootstrap" -c "$2" -X auto.offset.reset=earliest \
    -q $extra 2>&1 | grep 'consumed in' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\1 \2/'
}
workloads=(
  "produce-100b-acks1|produce 100 2000000 1"
  "produce-1000b-acks1|produce 1000 1000000 1"
  "produce-100b-acksall|produce 100 2000000 -1"
  "consume-100b|consume 100 2000000"
  "consume-1000b|consume 1000 1000000"
)
results=$(mktemp)
raw_before=$(raw_bandwidth)
for ((round = 1; round <= rounds; round++)); do
  order=("${brokers[@]}")
  if ((round % 2 == 0)); then
    order=(); for ((i = ${#brokers[@]} - 1; i >= 0; i--)); do order+=("${brokers[i]}"); done
  fi
  for workload in "${workloads[@]}"; do
    name=${workload%%|*}; read -r kind size count acks <<< "${workload#*|}"
    [[ -z "$only" || $name =~ $only ]] || continue
    for broker in "${order[@]}"; do
      row=$name; [[ ${#brokers[@]} -gt 1 ]] && row="$name [${broker%%=*}]"
      topic="$name-$round-$(date +%s%N)"
      start_broker "$broker"
      create_topic "$bootstrap" "$topic"
      if [[ $kind == produce ]]; then
        figures=$(produce "$topic" "$size" "$count" "$acks")
      else
        produce "$topic" "$size" "$count" 1 > /dev/null
        figures=$(consume "$topic" "$count")
      fi
      stop_broker
      echo "$row round $round: ${figures:-failed}" >&2
      printf '%s\t%s\t%s\n' "$row" "$round" "${figures:-}" >> "$results"
    done
  done
done
raw_after=$(raw_bandwidth)
python3 - "$results" "perf/results/$label.md" "$commit" "$command_line" "$raw_before" "$raw_after" \
  "${external:-$(for b in "${brokers[@]}"; do echo -n "${b%%=*}: $(broker_describe "$b"); "; done)(each fresh per run)}" "$extra" <<'PY'
import collections, os, platform, statistics, sys
results, out, commit, command, raw_before, raw_after, broker, extra = sys.argv[1:]
runs = collections.OrderedDict()
for line in open(results):
    name, round_, figures = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append(tuple(map(float, figures.split())) if figures else None)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
raw = (float(raw_before) + float(raw_after)) / 2
L = [f"# rdkafka_performance against {broker}\n",
     f"Command: `{command}`\n",
     f"- cores: {os.cpu_count()}, {cpu}; kernel {platform.release()}",
     f"- commit: {commit}; client: librdkafka's rdkafka_performance (built by perf/peers/rdkafka-performance.sh), its defaults{', plus ' + extra if extra else ''}",
     f"- raw direct write of the data disk (raw-1m-x4): {raw_before} GB/s before, {raw_after} GB/s after\n",
     "| workload | runs: M msg/s | runs: MB/s | median M msg/s | median MB/s | of raw write |",
     "|---|---|---|---|---|---|"]
for name, values in runs.items():
    ok = [v for v in values if v]
    msgs = " / ".join(f"{v[0] / 1e6:.2f}" if v else "failed" for v in values)
    mbs = " / ".join(f"{v[1]:.0f}" if v else "failed" for v in values)
    if ok:
        m, b = statistics.median(v[0] for v in ok), statistics.median(v[1] for v in ok)
        share = f"{b / 1000 / raw:.0%}" if name.startswith("produce") else "-"
        L.append(f"| {name} | {msgs} | {mbs} | {m / 1e6:.2f} | {b:.0f} | {share} |")
    else:
        L.append(f"| {name} | {msgs} | {mbs} | failed | failed | - |")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
