#!/usr/bin/env bash
# Tansu (now nisshi) with its in-memory storage engine, as the in-memory ceiling issue 15
# compares Spindle with. Built from a checkout of its public repository that lives outside
# this project (TANSU_SRC, default ../tansu): never vendored, never committed.
#
#   TANSU_SRC=/path/to/tansu perf/peers/tansu.sh build      cargo build --release --features dynostore
#   perf/peers/tansu.sh binary | version
#   perf/peers/tansu.sh start DATA_DIR [PORT]               in-memory broker on 127.0.0.1:PORT (9092)
#   perf/peers/tansu.sh stop DATA_DIR
#
# DATA_DIR only holds its pid and log: the memory:// engine keeps every record in RAM.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=perf/lib/process.sh
source perf/lib/process.sh
src=${TANSU_SRC:-../tansu}
binary=$src/target/release/nisshi
die() { echo "tansu.sh: $*" >&2; exit 2; }
need_binary() { [[ -x $binary ]] || die "no $binary: set TANSU_SRC to a tansu checkout and run 'perf/peers/tansu.sh build'"; }

cmd=${1:-}; shift || true
case $cmd in
  build)
    [[ -f $src/Cargo.toml ]] || die "TANSU_SRC=$src is not a tansu checkout"
    # Its rust-toolchain.toml pins a toolchain this machine may not have; the stable one builds it.
    (cd "$src" && RUSTUP_TOOLCHAIN=stable cargo build --release -p nisshi --features dynostore --bin nisshi)
    echo "$binary"
    ;;
  binary) need_binary; echo "$binary" ;;
  version) need_binary; echo "$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)" ;;
  start)
    [[ $# -ge 1 ]] || die "start DATA_DIR [PORT]"
    need_binary
    dir=$1; port=${2:-9092}
    mkdir -p "$dir"
    nohup "$binary" broker --storage-engine memory://nisshi/ \
      --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
      >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_listening "$port" "$dir/pid" "$dir/server.log" 30 || die "broker did not start"
    echo "tansu on 127.0.0.1:$port pid $(cat "$dir/pid")"
    ;;
  stop)
    [[ $# -ge 1 ]] || die "stop DATA_DIR"
    stop_pid_file "$1/pid" 10
    ;;
  *) die "usage: tansu.sh build | binary | version | start DATA_DIR [PORT] | stop DATA_DIR" ;;
esac
