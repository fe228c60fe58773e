#!/usr/bin/env bash
# One workload against a fresh broker, with the broker's CPU seconds (user + system, from
# /proc) and context switches counted over the measured part. A quick by-hand check of
# what the broker itself spends, beside the scripts' throughput figures.
#
#   perf/probes/broker-cpu.sh consume BIN   1 M x 1000 B filled with rdkafka_performance
#                                           (linger.ms=5), then consumed in a group:
#                                           prints MB/s and the broker's CPU s for the consume
#   perf/probes/broker-cpu.sh ack40k BIN    spindle bench --engine rdkafka at 40,000 msg/s of
#                                           100 B, linger.ms=0, acks=1, 2 partitions, 10 s
#                                           after 2 s: prints p50/p99 us, CPU s, switches
#
# DATA=DIR puts the broker's data elsewhere (e.g. on tmpfs, to take the device away).
# Needs rdkafka_performance (perf/peers/rdkafka-performance.sh) and `perf` for ack40k.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?consume|ack40k} bin=${2:?broker binary}
data=${DATA:-target/probe-broker-cpu}
bootstrap=127.0.0.1:19092
rm -rf "$data"; log=$(mktemp)
"$bin" serve --listen "$bootstrap" --data-dir "$data" --default-partitions 2 > "$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks=$(getconf CLK_TCK)
seconds() { awk -v t="$1" -v hz="$ticks" 'BEGIN { printf "%.2f", t / hz }'; }
topic=probe-$RANDOM
case $mode in
  consume)
    tool=$(perf/peers/rdkafka-performance.sh)
    "$tool" -P -t "$topic" -b "$bootstrap" -s 1000 -c 1000000 -a 1 -q -X linger.ms=5 > /dev/null 2>&1
    before=$(cpu_ticks)
    rate=$("$tool" -G "group-$topic" -t "$topic" -b "$bootstrap" -c 1000000 \
      -X auto.offset.reset=earliest -q -X linger.ms=5 2>&1 | grep 'consumed in' | tail -1 |
      sed -E 's/.* \(([0-9.]+) MB\/s\).*/\1/')
    after=$(cpu_ticks)
    echo "$(basename "$bin") consume MB/s $rate broker_cpu_s $(seconds $((after - before)))"
    ;;
  ack40k)
    stat=$(mktemp)
    before=$(cpu_ticks)
    perf stat -e context-switches -p "$pid" -o "$stat" &
    perf_pid=$!
    json=$(target/release/spindle bench produce --brokers "$bootstrap" --topic "$topic" \
      --engine rdkafka --partitions 2 --message-bytes 100 --acks 1 --linger-ms 0 \
      --throughput 40000 --duration-secs 10 --warmup-secs 2 --json 2>/dev/null | tail -1)
    after=$(cpu_ticks)
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    switches=$(awk '/context-switches/ {print $1}' "$stat"); rm -f "$stat"
    latency=$(python3 -c 'import json,sys; l=json.loads(sys.argv[1])["latency_us"]; print("p50_us", l["p50"], "p99_us", l["p99"])' "$json")
    echo "$(basename "$bin") ack40k $latency broker_cpu_s $(seconds $((after - before))) context_switches $switches"
    ;;
  *) echo "broker-cpu.sh: unknown mode $mode (consume|ack40k)" >&2; exit 2 ;;
esac
