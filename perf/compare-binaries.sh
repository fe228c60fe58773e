#!/usr/bin/env bash
# Runs the same `spindle bench produce` cases against brokers built from different commits,
# alternating the binaries case by case and round by round (this VM's disk drifts, so a
# before/after pair is only fair when measured side by side), and writes one Markdown table:
# messages/s, MB/s and p99 per case, binary and round, with each binary's median.
#
#   perf/compare-binaries.sh --label NAME [--rounds 2] [--duration-secs 8] [--warmup-secs 2]
#                            [--cases FILE] [--broker-flags "..."] NAME=BINARY NAME=BINARY...
#
# Build each binary first (e.g. `git worktree` or a checkout, then copy
# target/release/spindle aside). Every run gets a fresh broker on an empty data directory
# (target/bench-compare); the load generator is always the first binary's `spindle bench`,
# so only the broker differs. Cases: `name | bench produce flags` or
# `name | consume fill=BYTES [--partitions N] [--passes P]`, default
# perf/scenarios/compare-produce.txt. Results: perf/results/NAME.md, every run in NAME.tsv,
# drawn as NAME.svg (spindle-bench bars).
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="perf/compare-binaries.sh $*"
rounds=2 duration=8 warmup=2 cases=perf/scenarios/compare-produce.txt label="" broker_flags=""
binaries=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration-secs) duration=$2; shift 2 ;;
    --warmup-secs) warmup=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --broker-flags) broker_flags=$2; shift 2 ;;
    *=*) binaries+=("$1"); shift ;;
    *) echo "compare-binaries.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$label" ]] || { echo "compare-binaries.sh: --label is required" >&2; exit 2; }
(( ${#binaries[@]} >= 2 )) || { echo "compare-binaries.sh: name two or more NAME=BINARY" >&2; exit 2; }
[[ -r "$cases" ]] || { echo "compare-binaries.sh: cannot read $cases" >&2; exit 2; }
for spec in "${binaries[@]}"; do
  [[ -x "${spec#*=}" ]] || { echo "compare-binaries.sh: ${spec#*=} is not executable" >&2; exit 2; }
done
generator=${binaries[0]#*=}
data=target/bench-compare
results=$(mktemp)
out="perf/results/${label}.md"

broker_pid=""
stop_broker() {
  [[ -n "$broker_pid" ]] || return 0
  kill -TERM "$broker_pid"; wait "$broker_pid" || echo "broker exited with $?" >&2
  broker_pid=""; rm -rf "$data"
}
trap stop_broker EXIT

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
for ((round = 1; round <= rounds; round++)); do
  while IFS= read -r line; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    IFS='|' read -r name flags <<< "$line"
    name=$(trim "$name")
    read -ra args <<< "$flags"
    # Odd rounds in the order given, even rounds reversed (ABBA).
    order=("${binaries[@]}")
    if (( round % 2 == 0 )); then
      order=(); for ((i = ${#binaries[@]} - 1; i >= 0; i--)); do order+=("${binaries[$i]}"); done
    fi
    for spec in "${order[@]}"; do
      bin_name=${spec%%=*} bin=${spec#*=}
      rm -rf "$data"; log=$(mktemp)
      # shellcheck disable=SC2086
      "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" $broker_flags > "$log" 2>&1 &
      broker_pid=$!
      for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
      bootstrap=$(head -1 "$log" | awk '{print $4}')
      if [[ "${args[0]:-}" == consume ]]; then
        # `consume fill=BYTES [--partitions N] [--passes P]`: fill the topic with 1 KiB
        # messages (not timed), then read it all P times.
        fill=0 partitions=1 passes=1
        for ((i = 1; i < ${#args[@]}; i++)); do
          case "${args[$i]}" in
            fill=*) fill=${args[$i]#fill=} ;;
            --partitions) partitions=${args[$((i + 1))]}; i=$((i + 1)) ;;
            --passes) passes=${args[$((i + 1))]}; i=$((i + 1)) ;;
          esac
        done
        "$generator" bench produce --brokers "$bootstrap" --topic "$name" --partitions "$partitions" \
          --message-bytes 1024 --messages $((fill / 1024)) --batch-bytes 262144 > /dev/null 2>&1
        json=$("$generator" bench consume --brokers "$bootstrap" --topic "$name" --passes "$passes" \
          --json 2>/dev/null | tail -1) || json=""
      else
        json=$("$generator" bench produce --brokers "$bootstrap" --topic "$name" "${args[@]}" \
          --duration-secs "$duration" --warmup-secs "$warmup" --json 2>/dev/null | tail -1) || json=""
      fi
      stop_broker; rm -f "$log"
      echo "$name round $round $bin_name: ${json:0:120}" >&2
      printf '%s\t%s\t%s\t%s\n' "$name" "$round" "$bin_name" "$json" >> "$results"
    done
  done < "$cases"
done

python3 - "$results" "$out" "$(git rev-parse --short HEAD)" "$command_line" \
  "$duration" "$warmup" "${binaries[@]}" <<'PY'
import json, os, platform, statistics, sys
results, out, commit, command, duration, warmup, *binaries = sys.argv[1:]
names = [b.split("=", 1)[0] for b in binaries]
rows = {}
for line in open(results):
    case, rnd, name, text = line.rstrip("\n").split("\t", 3)
    try:
        r = json.loads(text)
    except ValueError:
        r = None
    rows.setdefault(case, {}).setdefault(name, []).append((int(rnd), r))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
L = [f"# Broker binaries side by side: {', '.join(names)}\n",
     f"Command: `{command}` ({duration} s per run after a {warmup} s warm-up; binaries alternate "
     "within each case, reversed every other round)\n",
     f"- cores: {os.cpu_count()}, {cpu}; kernel {platform.release()}",
     f"- measured at commit {commit}; binaries: " + ", ".join(f"`{b}`" for b in binaries),
     "- the load generator is the first binary's `spindle bench`, on the same machine\n",
     "| case | broker | runs: M msg/s | runs: MB/s | runs: p99 ms | median M msg/s | vs first |",
     "|---|---|---|---|---|---|---|"]
for case, by_name in rows.items():
    base = None
    for name in names:
        runs = [r for _, r in sorted(by_name.get(name, []), key=lambda x: x[0])]
        ok = [r for r in runs if r]
        rates = [r["messages_per_sec"] / 1e6 for r in ok]
        mbs = [r["bytes_per_sec"] / 1e6 for r in ok]
        p99 = [r["latency_us"]["p99"] / 1e3 for r in ok]
        median = statistics.median(rates) if rates else float("nan")
        if base is None:
            base = median
        L.append(f"| {case} | {name} | {' / '.join(f'{x:.2f}' for x in rates)} | "
                 f"{' / '.join(f'{x:,.0f}' for x in mbs)} | {' / '.join(f'{x:.1f}' for x in p99)} | "
                 f"{median:.2f} | {median / base:.2f} |")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
# Every run for `spindle-bench bars`: case, binary, round, "msg/s MB/s p50 p99", -, -.
with open(out[:-3] + ".tsv", "w") as tsv:
    for case, by_name in rows.items():
        for name in names:
            for rnd, r in sorted(by_name.get(name, []), key=lambda x: x[0]):
                figures = (f"{r['messages_per_sec']:.0f} {r['bytes_per_sec'] / 1e6:.1f} "
                           f"{r['latency_us']['p50'] / 1e3:.3f} {r['latency_us']['p99'] / 1e3:.3f}") if r else ""
                tsv.write(f"{case}\t{name}\t{rnd}\t{figures}\t0\t0\n")
PY
rm -f "$results"
# The runs as one chart: a panel per case, a bar per binary, each run a dot.
if [[ -x target/release/spindle-bench ]]; then
  target/release/spindle-bench bars "${out%.md}.tsv" --out "${out%.md}.svg" --title "$label" &&
    echo "chart: ${out%.md}.svg"
fi
