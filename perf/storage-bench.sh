#!/usr/bin/env bash
# Runs the storage benchmark (benches/storage.rs) and records the result, with the facts
# about this machine that the numbers depend on, in perf/results/storage-<date>-<host>.md.
#
#   perf/storage-bench.sh [--gib N] [--rounds N] [extra bench flags...]
#
# The data directory is target/bench-storage (same filesystem as the repository; it must
# support O_DIRECT, so not tmpfs). Each case writes N GiB (default 2); the whole matrix
# with 3 rounds writes about 40 GiB and takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
date=$(date -u +%Y-%m-%d)
host=$(hostname -s 2>/dev/null || echo host)
out="perf/results/storage-${date}-${host}.md"
table=$(mktemp)
cargo bench --bench storage --no-run >/dev/null 2>&1 || cargo bench --bench storage --no-run
dev=$(df --output=source target | tail -1)
{
  echo "# Storage benchmark, ${date}, ${host}"
  echo
  echo "Command: \`perf/storage-bench.sh $*\` (benches/storage.rs)"
  echo
  echo "- cores: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- kernel: $(uname -r)"
  echo "- data filesystem: $(df -T target | tail -1 | awk '{print $2}') on ${dev}"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
  echo
} > "$out"
cargo bench --bench storage -- --markdown "$table" "$@"
cat "$table" >> "$out"
rm -f "$table"
echo "wrote $out"
