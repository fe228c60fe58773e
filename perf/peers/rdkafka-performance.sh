#!/usr/bin/env bash
# Builds librdkafka's own benchmark, rdkafka_performance (what users of librdkafka measure
# Kafka-compatible brokers with), from the librdkafka source that the rdkafka-sys crate
# vendors (configured and built by `cargo build` for spindle-bench: its config.h, its static
# librdkafka, and zstd-sys's libzstd). Nothing is downloaded or committed: the binary goes to
# target/tools/rdkafka_performance. Prints its path.
#
#   perf/peers/rdkafka-performance.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p spindle-bench --quiet
librdkafka=$(ls -t target/release/build/rdkafka-sys-*/out/src/librdkafka.a | head -1)
source=${librdkafka%/src/librdkafka.a}
libzstd=$(ls -t target/release/build/zstd-sys-*/out/libzstd.a | head -1)
mkdir -p target/tools
binary=target/tools/rdkafka_performance
if [[ ! -x "$binary" || "$librdkafka" -nt "$binary" ]]; then
  cc -O2 -I "$source/src" "$source/examples/rdkafka_performance.c" -o "$binary" \
    "$librdkafka" "$libzstd" -lz -lpthread -lm -ldl -lrt
fi
echo "$binary"
