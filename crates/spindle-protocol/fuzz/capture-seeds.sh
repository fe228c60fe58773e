#!/usr/bin/env bash
# Rebuilds the fuzz seed corpus (crates/spindle-protocol/fuzz/corpus/request_decode) from real clients: starts a
# broker that writes every request frame it receives to a directory, drives it with
# librdkafka (kcat and python3-confluent-kafka: produce with every codec, consume, consumer
# groups, admin calls, the error paths) and with `spindle bench` (both engines), then turns
# the frames, the record batches inside their Produce requests, and generated requests for
# every served API and version into seeds.
#
#   crates/spindle-protocol/fuzz/capture-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --release --workspace --quiet
work=$(mktemp -d)
trap 'kill "$broker" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/frames"
target/release/spindle serve --listen 127.0.0.1:0 --cores 2 --no-pin --data-dir "$work/data" \
  --group-initial-rebalance-delay-ms 100 --capture-requests-dir "$work/frames" \
  > "$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do grep -q "listening on" "$work/broker.log" && break; sleep 0.1; done
bootstrap=$(head -1 "$work/broker.log" | awk '{print $4}')

/usr/bin/python3 tests/interop/confluent_kafka_client.py "$bootstrap" seeds_client > /dev/null
/usr/bin/python3 tests/interop/confluent_kafka_group.py "$bootstrap" seeds_group > /dev/null
/usr/bin/python3 tests/interop/confluent_kafka_faults.py "$bootstrap" seeds_faults > /dev/null 2>&1 || echo "capture-seeds: the load step at line $LINENO failed (its seeds are missing)" >&2
seq 1 200 | kcat -b "$bootstrap" -P -t seeds_kcat -z snappy
kcat -b "$bootstrap" -C -t seeds_kcat -o beginning -e -q > /dev/null
kcat -b "$bootstrap" -L > /dev/null
for compression in none lz4 zstd; do
  target/release/spindle bench produce --brokers "$bootstrap" --topic "seeds_bench_$compression" \
    --partitions 2 --message-bytes 100 --messages 2000 --compression "$compression" > /dev/null 2>&1 || echo "capture-seeds: the load step at line $LINENO failed (its seeds are missing)" >&2
done
target/release/spindle bench produce --engine rdkafka --brokers "$bootstrap" --topic seeds_rdkafka \
  --partitions 2 --message-bytes 100 --messages 2000 --keys > /dev/null 2>&1 || echo "capture-seeds: the load step at line $LINENO failed (its seeds are missing)" >&2
target/release/spindle bench consume --brokers "$bootstrap" --topic seeds_bench_none > /dev/null 2>&1 || echo "capture-seeds: the load step at line $LINENO failed (its seeds are missing)" >&2
kill "$broker"; wait "$broker" || true

# Keep a bounded sample: the five smallest frames of each API and version, 64 KiB at most
# (big Produce frames add little but time).
mkdir -p "$work/sample"
/usr/bin/python3 - "$work/frames" "$work/sample" <<'PY'
import collections, os, shutil, sys
frames, sample = sys.argv[1:]
by_version = collections.defaultdict(list)
for name in os.listdir(frames):
    size = os.path.getsize(os.path.join(frames, name))
    if size <= 65536:
        by_version["-".join(name.split("-")[:2])].append((size, name))
for entries in by_version.values():
    for _, name in sorted(entries)[:5]:
        shutil.copy(os.path.join(frames, name), sample)
PY
corpus=crates/spindle-protocol/fuzz/corpus/request_decode
rm -rf "$corpus"
SPINDLE_FUZZ_CORPUS="$PWD/$corpus" SPINDLE_CAPTURED="$work/sample" \
  cargo test --release --quiet -p spindle-protocol --lib write_fuzz_seed_corpus -- --ignored > /dev/null
echo "captured $(ls "$work/frames" | wc -l) frames ($(ls "$work/frames" | cut -d- -f1,2 | sort -u | wc -l) API versions from clients); corpus: $(ls "$corpus" | wc -l) seeds"

# The batch-splitting target starts from the same batches: each alone, each pair back to
# back, and each pair with the second cut short.
rm -rf crates/spindle-protocol/fuzz/corpus/batch_split
/usr/bin/python3 - "$corpus" crates/spindle-protocol/fuzz/corpus/batch_split <<'PY'
import hashlib, os, sys
source, target = sys.argv[1:]
os.makedirs(target, exist_ok=True)
batches = [seed[1:] for seed in (open(os.path.join(source, name), 'rb').read()
                                 for name in sorted(os.listdir(source))) if seed and seed[0] & 1]
def write(data):
    open(os.path.join(target, hashlib.sha1(data).hexdigest()[:16]), 'wb').write(data)
for batch in batches:
    write(batch)
for first, second in zip(batches, batches[1:]):
    write(first + second)
    write(first + second[:len(second) // 2])
PY
