#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets (request decoding and produced-batch validation;
# splitting record sets into batches)
# for a bounded time, starting from the seed corpus captured from real clients
# (capture-seeds.sh here). New inputs it finds go to a scratch directory, not the
# committed corpus; a crash is saved under artifacts/ here and fails the run.
#
#   crates/spindle-protocol/fuzz/run.sh [SECONDS]          (default 60; CI runs it)
#
# Builds with `cargo fuzz` (cargo install cargo-fuzz) on the stable toolchain: no
# sanitizer (-s none), libFuzzer's coverage instrumentation only. Any allocation over
# 1 GiB is reported as a failure, so a length from the wire that sizes a buffer is found
# even where the machine could have given the memory.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The time is shared: two thirds to request decoding (the larger surface), the rest to
# batch splitting.
for target in request_decode batch_split; do
  if [[ $target == request_decode ]]; then
    share=$((seconds * 2 / 3))
  else
    share=$((seconds - seconds * 2 / 3))
  fi
  mkdir -p "$scratch/$target"
  cargo fuzz run -s none -O "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$share" -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1
done
