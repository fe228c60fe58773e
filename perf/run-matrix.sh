#!/usr/bin/env bash
# Runs a scenario matrix (default perf/scenarios/standard.txt) with `spindle bench` and
# writes perf/results/<date>-<host>.md, plus one JSON line and one SVG plot per case in
# perf/results/<date>-<host>/. The raw direct-write bandwidth of the data disk is measured
# in the same run (before and after the cases), so every produce figure is also a fraction
# of the device's limit.
#
#   perf/run-matrix.sh [--duration-secs 10] [--warmup-secs 2] [--scenarios FILE]
#                      [--only REGEX] [--label NAME]
#                      [--brokers HOST:PORT] [--engine native|rdkafka]
#
# By default each case gets a fresh `spindle serve` on an empty data directory
# (target/bench-matrix) with the case's flush policy. With --brokers, the cases run against
# that broker instead (any Kafka-compatible broker: start it yourself; the flush column is
# then not ours to set), on topics named with this run's id. --engine forces one client
# engine for every case: use rdkafka to compare brokers with the same client.
set -euo pipefail
cd "$(dirname "$0")/.."
# The command as typed, for the report (the loop below consumes the arguments).
command_line="perf/run-matrix.sh $*"
duration=10 warmup=2 scenarios=perf/scenarios/standard.txt only="" label="" external="" engine=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration-secs) duration=$2; shift 2 ;;
    --warmup-secs) warmup=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --brokers) external=$2; shift 2 ;;
    --engine) engine=$2; shift 2 ;;
    *) echo "run-matrix.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -r "$scenarios" ]] || { echo "run-matrix.sh: cannot read $scenarios" >&2; exit 2; }
# Which code this measures, taken before this script writes its (tracked) results.
commit="$(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
date=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || echo host)
label=${label:-${date}-${host}}
out="perf/results/${label}.md"
artifacts="perf/results/${label}"
rm -rf "$artifacts"; mkdir -p "$artifacts"
cargo build --release --workspace --quiet
cargo bench --bench storage --no-run --quiet 2>/dev/null || cargo bench --bench storage --no-run
bin=target/release/spindle
data=target/bench-matrix
run_id=$(date +%s)

raw_bandwidth() { # GB/s of 1 MiB direct writes, 4 in flight, to a preallocated file
  local raw; raw=$(mktemp)
  cargo bench --bench storage --quiet -- --cases raw-1m-x4 --gib 2 --rounds 1 --markdown "$raw" >/dev/null
  grep '^| raw-1m-x4' "$raw" | awk -F'|' '{gsub(/ /,"",$3); print $3}'
  rm -f "$raw"
}

broker_pid="" broker_log=""
start_broker() { # flush: a fresh broker on an empty data directory; sets $bootstrap
  if [[ -n "$external" ]]; then bootstrap=$external; return; fi
  rm -rf "$data"
  broker_log=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" --flush "$1" > "$broker_log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$broker_log" && break; sleep 0.1; done
  bootstrap=$(head -1 "$broker_log" | awk '{print $4}')
}
stop_broker() {
  if [[ -z "$broker_pid" ]]; then return; fi
  kill -TERM "$broker_pid"; wait "$broker_pid" || echo "broker exited with $?" >&2
  if grep -q panicked "$broker_log"; then echo "broker panicked:" >&2; cat "$broker_log" >&2; fi
  rm -f "$broker_log"; rm -rf "$data"; broker_pid=""
}
trap stop_broker EXIT

raw_before=$(raw_bandwidth)
echo "raw direct write: ${raw_before} GB/s" >&2
cases="$artifacts/cases.tsv"
: > "$cases"
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }
while IFS= read -r line; do
  [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
  IFS='|' read -r name kind flush flags <<< "$line"
  name=$(trim "$name"); kind=$(trim "$kind"); flush=$(trim "$flush")
  [[ -n "$only" && ! "$name" =~ $only ]] && continue
  read -ra args <<< "$flags"
  if [[ -n "$engine" ]]; then
    # Drop the case's own engine choice, then force ours.
    filtered=(); skip=0
    for a in "${args[@]}"; do
      if [[ $skip == 1 ]]; then skip=0; continue; fi
      if [[ "$a" == --engine ]]; then skip=1; continue; fi
      filtered+=("$a")
    done
    args=("${filtered[@]}" --engine "$engine")
  fi
  # 256 KiB batches unless the case names its own size.
  [[ "$kind" == rdkperf-* || " ${args[*]} " == *" --batch-bytes "* ]] || args+=(--batch-bytes 262144)
  topic="$name-$run_id"
  bench=(--topic "$topic" --json --plot "$artifacts/$name.svg" --percentiles-out "$artifacts/$name.hgrm")
  target=""
  echo "== $name ($kind, flush $flush)" >&2
  start_broker "$flush"
  bench+=(--brokers "$bootstrap")
  case "$kind" in
    produce)
      json=$("$bin" bench produce "${args[@]}" "${bench[@]}" \
        --duration-secs "$duration" --warmup-secs "$warmup" | tail -1) || true ;;
    sustained)
      json=$("$bin" bench produce "${args[@]}" "${bench[@]}" | tail -1) || true ;;
    e2e)
      rest=()
      for a in "${args[@]}"; do
        if [[ "$a" == rate=* ]]; then
          spec=${a#rate=}; of=${spec%%:*}; fraction=${spec##*:}
          target=$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["messages_per_sec"] * float(sys.argv[2])))' \
            "$artifacts/$of.json" "$fraction")
          rest+=(--throughput "$target")
        else
          rest+=("$a")
        fi
      done
      json=$("$bin" bench e2e "${rest[@]}" "${bench[@]}" \
        --duration-secs "$duration" --warmup-secs "$warmup" | tail -1) || true ;;
    consume)
      fill=0 partitions=1 passes=1 consume_engine=()
      for ((i = 0; i < ${#args[@]}; i++)); do
        case "${args[$i]}" in
          fill=*) fill=${args[$i]#fill=} ;;
          --partitions) partitions=${args[$((i + 1))]}; i=$((i + 1)) ;;
          --passes) passes=${args[$((i + 1))]}; i=$((i + 1)) ;;
          --engine) consume_engine=(--engine "${args[$((i + 1))]}"); i=$((i + 1)) ;;
        esac
      done
      "$bin" bench produce --brokers "$bootstrap" --topic "$topic" --partitions "$partitions" \
        --message-bytes 1024 --messages $((fill / 1024)) --batch-bytes 262144 > /dev/null 2>&1
      if [[ -n "$external" || "${consume_engine[*]}" == *rdkafka* ]]; then passes=1; fi
      json=$("$bin" bench consume "${consume_engine[@]}" --passes "$passes" "${bench[@]}" | tail -1) || true ;;
    rdkperf-produce|rdkperf-consume)
      # librdkafka's rdkafka_performance with the case's flags (2 partitions, `-X linger.ms`
      # as a user would set it); its summary line becomes the JSON the tables read. The
      # consume kind fills the topic with the same flags first, then reads it in a group.
      tool=$(perf/peers/rdkafka-performance.sh)
      count=2000000 partitions=2 tool_args=()
      for ((i = 0; i < ${#args[@]}; i++)); do
        case "${args[$i]}" in
          --partitions) partitions=${args[$((i + 1))]}; i=$((i + 1)); continue ;;
          -c) count=${args[$((i + 1))]} ;;
        esac
        tool_args+=("${args[$i]}")
      done
      # The tool does not create topics: one message from spindle bench does, with the
      # case's partition count.
      "$bin" bench produce --brokers "$bootstrap" --topic "$topic" --partitions "$partitions" \
        --messages 1 --message-bytes 8 > /dev/null 2>&1
      produced=$(timeout 300 "$tool" -P -t "$topic" -b "$bootstrap" -q "${tool_args[@]}" 2>&1 |
        grep 'messages produced' | tail -1) || true
      line=$produced
      if [[ $kind == rdkperf-consume ]]; then
        line=$(timeout 300 "$tool" -G "group-$topic" -t "$topic" -b "$bootstrap" -c "$count" -q \
          -X auto.offset.reset=earliest 2>&1 | grep 'consumed in' | tail -1) || true
      fi
      json=$(python3 - "$line" <<'RDKP'
import json, re, sys
line = sys.argv[1]
m = re.search(r"% (\d+) messages(?: produced)? \((\d+) bytes\).*?in (\d+)ms: (\d+) msgs/s", line)
if not m:
    sys.exit(0)
messages, size, ms, rate = map(int, m.groups())
print(json.dumps({"messages": messages, "bytes": size, "seconds": ms / 1000,
                  "messages_per_sec": rate, "bytes_per_sec": size / (ms / 1000), "errors": 0,
                  "latency_us": dict.fromkeys(["p50", "p90", "p99", "p999", "p9999", "max"], 0)}))
RDKP
) || true ;;
    *) echo "run-matrix.sh: $name: unknown kind $kind" >&2; exit 2 ;;
  esac
  stop_broker
  echo "$json" > "$artifacts/$name.json"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$([[ -n "$external" ]] && echo external || echo "$flush")" \
    "${target:--}" "${args[*]}" >> "$cases"
done < "$scenarios"
raw_after=$(raw_bandwidth)
echo "raw direct write after the cases: ${raw_after} GB/s" >&2

python3 - "$out" "$artifacts" "$raw_before" "$raw_after" "$commit" "$date" "$host" \
  "$command_line" "$duration" "$warmup" "${external:-spindle serve (fresh per case)}" <<'PY'
import json, os, platform, subprocess, sys
out, artifacts, raw_before, raw_after, commit, date, host, command, duration, warmup, broker = sys.argv[1:]
raw = (float(raw_before) + float(raw_after)) / 2
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
fs = subprocess.run(["df", "-T", "target"], capture_output=True, text=True).stdout.splitlines()[-1].split()
cases = []
for line in open(os.path.join(artifacts, "cases.tsv")):
    name, kind, flush, target, flags = line.rstrip("\n").split("\t")
    with open(os.path.join(artifacts, name + ".json")) as f:
        text = f.read().strip()
    try:
        r = json.loads(text)
    except ValueError:
        r = None
    cases.append((name, kind, flush, target, flags, r))
by_name = {c[0]: c[5] for c in cases}
L = []
L.append(f"# Benchmark matrix, {date}, {host}\n")
L.append(f"Command: `{command}` ({duration} s per timed case after a {warmup} s warm-up)\n")
L.append(f"- cores: {os.cpu_count()}, {cpu}")
L.append(f"- kernel: {platform.release()}")
L.append(f"- data filesystem: {fs[1]} on {fs[0]}")
L.append(f"- commit: {commit}")
L.append(f"- broker: {broker}; generator (`spindle bench`) on the same machine")
L.append(f"- raw direct write (glommio DmaFile, 1 MiB buffers, 4 in flight, preallocated file): "
         f"{raw_before} GB/s before the cases, {raw_after} GB/s after; ratios below use the mean, {raw:.2f} GB/s\n")
def lat(r, key="latency_us"):
    l = r[key]
    return f"{l['p50']:,} | {l['p90']:,} | {l['p99']:,} | {l['p999']:,} | {l['max']:,}"
L.append("## Produce\n")
L.append("| case | flush | flags | messages/s | MB/s | of raw | GB | p50 us | p90 us | p99 us | p99.9 us | max us | errors |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, kind, flush, target, flags, r in cases:
    if kind not in ("produce", "sustained", "rdkperf-produce"):
        continue
    if r is None:
        L.append(f"| {name} | {flush} | `{flags}` | failed | | | | | | | | | |"); continue
    mbs = r["bytes_per_sec"] / 1e6
    L.append(f"| {name} | {flush} | `{flags}` | {r['messages_per_sec']:,.0f} | {mbs:,.0f} | {mbs / 1000 / raw:.0%} | "
             f"{r['bytes'] / 1e9:.1f} | {lat(r)} | {r['errors']} |")
L.append("\nProduce latency: per request (native engine: send to answer, with the case's `--in-flight` "
         "requests per connection, 8 if not given) or per message (rdkafka: `send()` to delivery "
         "report), at saturation. rdkperf rows (rdkafka_performance) report throughput only: "
         "their latency columns are zeros.\n")
L.append("## Fixed-rate end-to-end latency (produce to consume)\n")
L.append("| case | flush | flags | target msg/s | achieved msg/s | p50 us | p90 us | p99 us | p99.9 us | max us | ack p99 us | consumed = produced | errors |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for name, kind, flush, target, flags, r in cases:
    if kind != "e2e":
        continue
    if r is None:
        L.append(f"| {name} | {flush} | `{flags}` | {target} | failed | | | | | | | | |"); continue
    L.append(f"| {name} | {flush} | `{flags}` | {int(target):,} | {r['messages_per_sec']:,.0f} | {lat(r)} | "
             f"{r['produce_latency_us']['p99']:,} | {'yes' if r['messages'] <= r['produced'] and r['errors'] == 0 else 'NO'} | {r['errors']} |")
L.append("\nEach message carries the time it became due at the target rate (so batching, linger "
         "and any generator lag count); consumers long-poll the partition leaders.\n")
L.append("## Consume\n")
L.append("| case | flags | messages/s | MB/s | fetch p50 us | fetch p99 us | max us | errors |")
L.append("|---|---|---|---|---|---|---|---|")
for name, kind, flush, target, flags, r in cases:
    if kind not in ("consume", "rdkperf-consume"):
        continue
    if r is None:
        L.append(f"| {name} | `{flags}` | failed | | | | | |"); continue
    l = r["latency_us"]
    L.append(f"| {name} | `{flags}` | {r['messages_per_sec']:,.0f} | {r['bytes_per_sec'] / 1e6:,.0f} | "
             f"{l['p50']:,} | {l['p99']:,} | {l['max']:,} | {r['errors']} |")
L.append("\nNative consume counts stored batch bytes; rdkafka counts keys and values.\n")
# Issue 5's targets, where this run has the cases.
def get(name, key="messages_per_sec"):
    r = by_name.get(name)
    return None if r is None else r[key]
rows = []
best100 = max([v for v in (get("p1-100b-acks1"), get("p8-100b-acks1")) if v] or [0])
if best100:
    rows.append(("Produce 100 B, acks=1, unthrottled: >= 3 M msg/s", f"{best100 / 1e6:.1f} M msg/s (best of 1 and 8 partitions)", best100 >= 3e6))
for p in ("p1", "p8"):
    v = get(f"{p}-1k-acks1", "bytes_per_sec")
    if v:
        rows.append((f"Produce 1 KiB, acks=1 ({p[1:]} partition(s)): >= 70% of raw", f"{v / 1e9:.2f} GB/s = {v / 1e9 / raw:.0%} of {raw:.2f}", v / 1e9 / raw >= 0.7))
for p in ("p1", "p8"):
    a, b = get(f"{p}-1k-all-always"), get(f"{p}-1k-acks1")
    if a and b:
        rows.append((f"acks=all `always` >= 50% of acks=1 (1 KiB, {p[1:]} partition(s))", f"{a / b:.0%}", a / b >= 0.5))
m = get("consume-memory-1k", "bytes_per_sec")
if m:
    rows.append(("Consume from memory: >= 1.5 GB/s", f"{m / 1e9:.2f} GB/s", m >= 1.5e9))
for name in ("lat-100b-p1", "lat-100b-p8", "lat-1k-p1", "lat-1k-p8"):
    r = by_name.get(name)
    if r:
        rows.append((f"e2e p99 at 50% of peak, acks=1 ({name}): record", f"p99 {r['latency_us']['p99']:,} us at {r['messages_per_sec']:,.0f} msg/s", None))
if rows:
    L.append("## Issue 5 targets in this run\n")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")
    for t, v, ok in rows:
        L.append(f"| {t} | {v} | {'recorded' if ok is None else ('yes' if ok else 'no')} |")
    L.append("")
L.append(f"Per-case JSON (the bench's own `--json` line), SVG plots (latency percentiles on a "
         f"1/(1-p) axis, throughput and p99 over time) and latency distributions (`.hgrm`, for "
         f"`spindle-bench plot` to overlay runs): `{artifacts}/`. The same tables with the "
         f"plots inline: `{out[:-3]}.html`.")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))

# The HTML report: the markdown's tables and text, then every case's plot inline, so the
# one file opens offline anywhere.
import html
def inline(text):
    text = html.escape(text)
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
H = ["<!doctype html><html><head><meta charset='utf-8'>",
     f"<title>{html.escape(L[0].lstrip('# ').strip())}</title>",
     "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
     "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
     "text-align:right}td:first-child,th:first-child{text-align:left}code{background:#f3f3f3}"
     "figure{margin:2em 0}</style></head><body>"]
rows = []
def flush_rows():
    if not rows:
        return
    H.append("<table>")
    for i, row in enumerate(rows):
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        tag = "th" if i == 0 else "td"
        H.append("<tr>" + "".join(f"<{tag}>{inline(c)}</{tag}>" for c in cells) + "</tr>")
    H.append("</table>")
    rows.clear()
for line in "\n".join(L).splitlines():
    if line.startswith("|"):
        if not set(line) <= set("|-: "):
            rows.append(line)
        continue
    flush_rows()
    if line.startswith("## "):
        H.append(f"<h2>{inline(line[3:])}</h2>")
    elif line.startswith("# "):
        H.append(f"<h1>{inline(line[2:])}</h1>")
    elif line.startswith("- "):
        H.append(f"<p>&bull; {inline(line[2:])}</p>")
    elif line.strip():
        H.append(f"<p>{inline(line)}</p>")
flush_rows()
H.append("<h2>Plots</h2>")
for name, kind, flush, target, flags, r in cases:
    svg = os.path.join(artifacts, name + ".svg")
    if os.path.exists(svg):
        H.append(f"<figure><figcaption>{html.escape(name)} ({html.escape(kind)})</figcaption>")
        H.append(open(svg).read())
        H.append("</figure>")
H.append("</body></html>")
open(out[:-3] + ".html", "w").write("\n".join(H) + "\n")
PY
