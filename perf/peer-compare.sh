#!/usr/bin/env bash
# Spindle beside other brokers (Apache Kafka, Tansu in memory, or another Spindle build),
# measured with generators neither team wrote: Kafka's own ProducerPerformance and
# ConsumerPerformance (the Java client at its defaults: acks=all, idempotent, linger.ms=5)
# and librdkafka's rdkafka_performance. Each case runs on each broker in turn, every broker
# fresh, the order reversed every other round (this disk drifts). Issues 14 and 15.
#
#   perf/peer-compare.sh --label NAME --broker NAME=KIND [--broker NAME=KIND]...
#                        [--rounds 3] [--only REGEX] [--broker-flags "..."]
#
# KIND: spindle[:BINARY], kafka, tansu (perf/lib/brokers.sh). Writes
# perf/results/<label>.md: every run, each case's median per broker, the ratio of the first
# broker to each other, and each broker's CPU seconds and peak RSS per run.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/peer-compare.sh $*"
rounds=3 label="" only="" brokers=() broker_flags=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --broker) [[ $2 == *=* ]] || { echo "peer-compare.sh: --broker wants NAME=KIND" >&2; exit 2; }
      brokers+=("$2"); shift 2 ;;
    --broker-flags) broker_flags=$2; shift 2 ;;
    *) echo "peer-compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "peer-compare.sh: --label is required" >&2; exit 2; }
[[ ${#brokers[@]} -gt 0 ]] || { echo "peer-compare.sh: at least one --broker" >&2; exit 2; }
# shellcheck source=perf/lib/brokers.sh
source perf/lib/brokers.sh
cargo build --release --workspace --quiet
rdkperf=$(perf/peers/rdkafka-performance.sh)
for broker in "${brokers[@]}"; do broker_check "$broker"; done
kafka_tool() { perf/peers/kafka.sh tool "$@" 2>&1 | grep -v '^SLF4J'; }
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
trap broker_stop EXIT

# Each case prints `MSGS_PER_SEC MB_PER_SEC [P50_MS P99_MS]` on success.
# With WARMUP, the figures are the tool's steady-state line: the records after the first
# WARMUP, once the client's JIT compiler has settled (in a 2 M-record run at 100 B it takes
# about a third of this 2-core machine, beside the broker).
java_produce() { # topic size count acks [warmup]
  # One --command-property takes every setting: given twice, only the last one counts.
  local props=(--command-property "bootstrap.servers=$bootstrap") warmup=()
  [[ $4 == default ]] || props+=("acks=$4")
  [[ -z ${5:-} ]] || warmup=(--warmup-records "$5")
  timeout 300 perf/peers/kafka.sh tool org.apache.kafka.tools.ProducerPerformance --topic "$1" \
    --record-size "$2" --num-records "$3" "${warmup[@]}" --throughput -1 "${props[@]}" 2>&1 |
    grep -E '^[0-9]+ (steady state )?records sent.*99th' | tail -1 |
    sed -E 's/.*sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\).*, ([0-9.]+) ms 50th, [0-9.]+ ms 95th, ([0-9.]+) ms 99th.*/\1 \2 \3 \4/'
}
java_consume() { # topic count
  timeout 300 perf/peers/kafka.sh tool org.apache.kafka.tools.ConsumerPerformance --topic "$1" \
    --num-records "$2" --bootstrap-server "$bootstrap" --group "perf-$1" --timeout 60000 \
    --hide-header 2>&1 | grep -E '^[0-9]{4}-' | tail -1 |
    awk -F', ' '{ printf "%s %s\n", $10, $9 }'
}
# Kafka's EndToEndLatency: one record at a time, each sent (acks=1) and consumed before the
# next. Prints round trips per second (1000 / average ms), 0 MB/s, and its p50 and p99,
# which the tool reports in whole milliseconds.
java_e2e() { # topic size count
  timeout 300 perf/peers/kafka.sh tool org.apache.kafka.tools.EndToEndLatency "$bootstrap" "$1" \
    "$3" 1 "$2" 2>&1 | awk '/^Avg latency/ { avg = $3 } /^Percentiles/ {
      gsub(/,/, ""); p50 = $4; p99 = $7 } END { if (avg > 0) printf "%.0f 0 %s %s\n", 1000 / avg, p50, p99 }'
}
# The same fixed rate against every broker, through librdkafka (spindle-bench's rdkafka
# engine: a paced producer and a consumer in one process, linger.ms=0, acks=1, each value
# stamped with its send time). Prints the rate reached, MB/s and produce-to-consume p50,
# p99 and p99.9 in milliseconds (microsecond resolution).
rdk_e2e() { # topic size rate
  timeout 120 target/release/spindle-bench e2e --engine rdkafka --brokers "$bootstrap" \
    --topic "$1" --partitions 2 --message-bytes "$2" --acks 1 --linger-ms 0 --throughput "$3" \
    --duration-secs 20 --warmup-secs 3 --percentiles-out "$hgrm_out" --json 2>/dev/null |
    tail -1 | python3 -c '
import json, sys
r = json.load(sys.stdin)
l = r["latency_us"]
rate, mbs = r["messages_per_sec"], r["bytes_per_sec"] / 1e6
p50, p99, p999 = (l[k] / 1e3 for k in ("p50", "p99", "p999"))
print(f"{rate:.0f} {mbs:.1f} {p50:.3f} {p99:.3f} {p999:.3f}")'
}
rdk_produce() { # topic size count acks
  timeout 300 "$rdkperf" -P -t "$1" -b "$bootstrap" -s "$2" -c "$3" -a "$4" -q -X linger.ms=5 2>&1 |
    grep 'messages produced' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1 \2/'
}
rdk_consume() { # topic count
  timeout 300 "$rdkperf" -G "group-$1" -t "$1" -b "$bootstrap" -c "$2" -X auto.offset.reset=earliest \
    -q 2>&1 | grep 'consumed in' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\1 \2/'
}
# name | payload bytes the measured command moves | how to fill the topic first (or -) |
# the measured command
cases=(
  "java-produce-100b-default|200000000|-|java_produce TOPIC 100 2000000 default"
  "java-produce-100b-acks1|200000000|-|java_produce TOPIC 100 2000000 1"
  "java-produce-100b-default-steady|1000000000|-|java_produce TOPIC 100 10000000 default 4000000"
  "java-produce-100b-acks1-steady|1000000000|-|java_produce TOPIC 100 10000000 1 4000000"
  "java-produce-1kib-default|512000000|-|java_produce TOPIC 1024 500000 default"
  "java-produce-1kib-acks1|512000000|-|java_produce TOPIC 1024 500000 1"
  "java-consume-1kib|512000000|java_produce TOPIC 1024 500000 1|java_consume TOPIC 500000"
  "java-e2e-latency-100b|1000000|-|java_e2e TOPIC 100 10000"
  "e2e-100b-at-10k|23000000|-|rdk_e2e TOPIC 100 10000"
  "e2e-100b-at-50k|115000000|-|rdk_e2e TOPIC 100 50000"
  "e2e-1kib-at-20k|471000000|-|rdk_e2e TOPIC 1024 20000"
  "rdkperf-produce-100b-acks1|200000000|-|rdk_produce TOPIC 100 2000000 1"
  "rdkperf-produce-1000b-acks1|1000000000|-|rdk_produce TOPIC 1000 1000000 1"
  "rdkperf-consume-1000b|1000000000|rdk_produce TOPIC 1000 1000000 1|rdk_consume TOPIC 1000000"
)
results=$(mktemp)
mkdir -p "perf/results/$label"
for ((round = 1; round <= rounds; round++)); do
  order=("${brokers[@]}")
  if ((round % 2 == 0)); then
    order=(); for ((i = ${#brokers[@]} - 1; i >= 0; i--)); do order+=("${brokers[i]}"); done
  fi
  for case_ in "${cases[@]}"; do
    IFS='|' read -r name bytes fill measure <<< "$case_"
    [[ -z "$only" || $name =~ $only ]] || continue
    for broker in "${order[@]}"; do
      topic="$name-$round-$(date +%s%N)"
      # Where a fixed-rate case keeps its latency distribution (for the overlay below).
      hgrm_out="perf/results/$label/$name-${broker%%=*}-$round.hgrm"
      broker_start "$broker"
      create_topic "$bootstrap" "$topic"
      [[ $fill == - ]] || ${fill//TOPIC/$topic} > /dev/null
      read -r cpu_before _ <<< "$(broker_usage)"
      figures=$(${measure//TOPIC/$topic} || true)
      read -r cpu_after rss <<< "$(broker_usage)"
      broker_stop
      cpu=$(awk -v a="$cpu_after" -v b="$cpu_before" -v n="$bytes" 'BEGIN { printf "%.2f", (a - b) / (n / 1e9) }')
      echo "$name [${broker%%=*}] round $round: ${figures:-failed} (broker ${cpu} CPU s/GB, peak rss ${rss} MiB)" >&2
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${broker%%=*}" "$round" "${figures:-}" "$cpu" "$rss" >> "$results"
    done
  done
done
described=$(for broker in "${brokers[@]}"; do echo "- ${broker%%=*}: $(broker_describe "$broker")"; done)
python3 - "$results" "perf/results/$label.md" "$commit" "$command_line" "$described" <<'PY'
import collections, os, platform, statistics, sys
results, out, commit, command, described = sys.argv[1:]
runs = collections.OrderedDict()
brokers = []
for line in open(results):
    name, broker, round_, figures, cpu, rss = line.rstrip("\n").split("\t")
    if broker not in brokers:
        brokers.append(broker)
    value = tuple(map(float, figures.split())) if figures else None
    runs.setdefault(name, collections.OrderedDict()).setdefault(broker, []).append((value, float(cpu), rss))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
L = [f"# Brokers side by side: {', '.join(brokers)}\n", f"Command: `{command}`\n",
     f"- cores: {os.cpu_count()}, {cpu}; kernel {platform.release()}; commit {commit}",
     "- generators: Kafka's ProducerPerformance/ConsumerPerformance (Java client defaults unless the case says acks=1), librdkafka's rdkafka_performance (-X linger.ms=5); every topic created with 2 partitions",
     "- brokers, each started fresh for every run:", described]
latency_cases = [n for n, per in runs.items() if any(v and len(v) == 5 for vs in per.values() for v, _, _ in vs)]
if any(n not in latency_cases for n in runs):
    L += ["", "| case | broker | runs: msg/s | runs: MB/s | median msg/s | median MB/s | p99 ms (median) | broker CPU s/GB | peak RSS MiB | ratio " + brokers[0] + "/this |",
          "|---|---|---|---|---|---|---|---|---|---|"]
for name, per in runs.items():
    if name in latency_cases:
        continue
    medians = {}
    for broker, values in per.items():
        ok = [v for v, _, _ in values if v]
        if ok:
            medians[broker] = statistics.median(v[0] for v in ok)
    for broker, values in per.items():
        ok = [(v, c) for v, c, _ in values if v]
        msgs = " / ".join(f"{v[0]:,.0f}" if v else "failed" for v, _, _ in values)
        mbs = " / ".join(f"{v[1]:.0f}" if v else "failed" for v, _, _ in values)
        if ok:
            m = statistics.median(v[0] for v, _ in ok)
            b = statistics.median(v[1] for v, _ in ok)
            p99 = [v[3] for v, _ in ok if len(v) >= 4]
            p99s = f"{statistics.median(p99):.0f}" if p99 else "-"
            cpu_gb = statistics.median(c for _, c in ok)
            rss = max(int(r) for _, _, r in values)
            ratio = f"{medians[brokers[0]] / m:.2f}" if brokers[0] in medians and broker != brokers[0] else "-"
            L.append(f"| {name} | {broker} | {msgs} | {mbs} | {m:,.0f} | {b:.0f} | {p99s} | {cpu_gb:.2f} | {rss} | {ratio} |")
        else:
            L.append(f"| {name} | {broker} | {msgs} | {mbs} | failed | failed | - | - | - | - |")
if latency_cases:
    L += ["", "Produce-to-consume latency at a fixed rate (spindle-bench's rdkafka engine: librdkafka, linger.ms=0, acks=1, 20 s after 3 s of warm-up; every value stamped with its send time):", "",
          "| case | broker | rate reached msg/s (runs) | runs: p50 / p99 / p99.9 ms | median p50 ms | median p99 ms | median p99.9 ms | broker CPU s/GB | peak RSS MiB | p99 ratio " + brokers[0] + "/this |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for name in latency_cases:
        per = runs[name]
        p99_first = None
        for broker, values in per.items():
            ok = [v for v, _, _ in values if v and len(v) == 5]
            if broker == brokers[0] and ok:
                p99_first = statistics.median(v[3] for v in ok)
        for broker, values in per.items():
            ok = [(v, c) for v, c, _ in values if v and len(v) == 5]
            rates = " / ".join(f"{v[0]:,.0f}" if v else "failed" for v, _, _ in values)
            if not ok:
                L.append(f"| {name} | {broker} | {rates} | failed | - | - | - | - | - | - |")
                continue
            each = " ; ".join(f"{v[2]:.2f} / {v[3]:.2f} / {v[4]:.2f}" for v, _ in ok)
            p50, p99, p999 = (statistics.median(v[i] for v, _ in ok) for i in (2, 3, 4))
            cpu_gb = statistics.median(c for _, c in ok)
            rss = max(int(r) for _, _, r in values)
            ratio = f"{p99_first / p99:.2f}" if p99_first is not None and broker != brokers[0] and p99 > 0 else "-"
            L.append(f"| {name} | {broker} | {rates} | {each} | {p50:.2f} | {p99:.2f} | {p999:.2f} | {cpu_gb:.2f} | {rss} | {ratio} |")
L += ["", "Broker CPU s/GB: the broker process's CPU seconds (user + system) during the measured command, per GB of record payload it moved. p99: the Java producer's own send-to-ack latency at full speed (queueing included), not e2e latency at a fixed rate; for java-e2e-latency, Kafka's EndToEndLatency (one record in flight, acks=1): msg/s is round trips per second and p99 is produce-to-consume, in the whole milliseconds that tool reports."]
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
# Every run's figures, and the chart drawn from them: one panel per case, a bar per broker
# at its median, each run a dot, the whisker spanning the runs.
cp "$results" "perf/results/$label.tsv"
target/release/spindle-bench bars "perf/results/$label.tsv" --out "perf/results/$label.svg" \
  --title "$label" && echo "chart: perf/results/$label.svg"
# Each fixed-rate case's latency curves, every broker and round on one log-scaled chart.
for case_ in "${cases[@]}"; do
  name=${case_%%|*}
  files=("perf/results/$label/$name"-*.hgrm)
  [[ -e ${files[0]} ]] || continue
  runs=()
  for file in "${files[@]}"; do
    run=${file##*/}; run=${run#"$name"-}; runs+=("${run%.hgrm}=$file")
  done
  target/release/spindle-bench plot "${runs[@]}" --out "perf/results/$label/$name.svg" \
    --title "$name: produce-to-consume latency" --latency-scale log &&
    echo "chart: perf/results/$label/$name.svg"
done
rmdir "perf/results/$label" 2>/dev/null || true
