# shellcheck shell=bash
# Starting and stopping the brokers the perf scripts compare, each fresh per run, and what
# a run cost each one. Sourced by perf/rdkafka-performance.sh and perf/peer-compare.sh.
#
# A broker is NAME=KIND, KIND being one of:
#   spindle[:BINARY]  spindle serve (default target/release/spindle), 2 partitions a topic
#   kafka             Apache Kafka via perf/peers/kafka.sh (single-node KRaft, same disk)
#   tansu             Tansu/nisshi with in-memory storage via perf/peers/tansu.sh
# broker_start sets $bootstrap and $broker_pid; broker_stop stops it and removes its data.
# Every broker's data lives under target/bench-peers/, on the same disk as ./data.

broker_dir=target/bench-peers
broker_pid="" broker_kind="" bootstrap="" broker_log=""

broker_check() { # NAME=KIND: exits with a message if KIND cannot run here
  local kind=${1#*=}
  perf/peers/kafka.sh setup >/dev/null # its TopicCommand creates every topic
  case $kind in
    spindle) ;;
    spindle:*) [[ -x ${kind#spindle:} ]] || { echo "brokers.sh: ${kind#spindle:} is not executable" >&2; exit 2; } ;;
    kafka) ;;
    tansu) perf/peers/tansu.sh binary >/dev/null ;;
    *) echo "brokers.sh: unknown broker kind '$kind' (spindle[:BINARY], kafka, tansu)" >&2; exit 2 ;;
  esac
}

broker_describe() { # NAME=KIND: the command line a result should record
  local kind=${1#*=}
  case $kind in
    spindle*) local bin=${kind#spindle:}; [[ $bin == spindle ]] && bin=target/release/spindle
      echo "$bin serve --default-partitions 2 ${broker_flags:-}" ;;
    kafka) echo "Apache Kafka $(perf/peers/kafka.sh version) (perf/peers/kafka.sh start; config: $(perf/peers/kafka.sh config /DIR | tr '\n' ' '))" ;;
    tansu) echo "Tansu/nisshi $(perf/peers/tansu.sh version) broker --storage-engine memory://nisshi/ (perf/peers/tansu.sh)" ;;
  esac
}

broker_start() { # NAME=KIND
  broker_kind=${1#*=}
  rm -rf "$broker_dir"; mkdir -p "$broker_dir"
  case $broker_kind in
    spindle*)
      local bin=${broker_kind#spindle:}; [[ $bin == spindle ]] && bin=target/release/spindle
      broker_log=$broker_dir/spindle.log
      # shellcheck disable=SC2086
      "$bin" serve --listen 127.0.0.1:0 --data-dir "$broker_dir/data" --default-partitions 2 \
        ${broker_flags:-} > "$broker_log" 2>&1 &
      broker_pid=$!
      for _ in $(seq 100); do grep -q "listening on" "$broker_log" && break; sleep 0.1; done
      bootstrap=$(head -1 "$broker_log" | awk '{print $4}')
      ;;
    kafka)
      perf/peers/kafka.sh start "$broker_dir/kafka" 19092 >/dev/null
      broker_pid=$(cat "$broker_dir/kafka/pid"); bootstrap=127.0.0.1:19092
      ;;
    tansu)
      perf/peers/tansu.sh start "$broker_dir/tansu" 19192 >/dev/null
      broker_pid=$(cat "$broker_dir/tansu/pid"); bootstrap=127.0.0.1:19192
      ;;
  esac
}

# `CPU_SECONDS PEAK_RSS_MIB` of the running broker so far.
broker_usage() {
  [[ -n "$broker_pid" && -r /proc/$broker_pid/stat ]] || { echo "0 0"; return; }
  local ticks; ticks=$(getconf CLK_TCK)
  awk -v t="$ticks" '{ printf "%.2f ", ($14 + $15) / t }' "/proc/$broker_pid/stat"
  awk '/^VmHWM:/ { printf "%.0f\n", $2 / 1024 }' "/proc/$broker_pid/status"
}

# Creates TOPIC with 2 partitions the same way on every broker, with Kafka's own admin tool
# (some brokers auto-create with other defaults, some not at all; Debian's librdkafka fails
# its ApiVersions exchange with Tansu, so its Python admin cannot be used).
create_topic() { # BOOTSTRAP TOPIC
  perf/peers/kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --create \
    --topic "$2" --partitions 2 --replication-factor 1 2>&1 | grep -q "^Created topic" ||
    { echo "brokers.sh: could not create topic $2 on $1" >&2; return 1; }
}

broker_stop() {
  [[ -n "$broker_pid" ]] || return 0
  case $broker_kind in
    spindle*) kill -TERM "$broker_pid"; wait "$broker_pid" || echo "spindle exited with $?" >&2 ;;
    kafka) perf/peers/kafka.sh stop "$broker_dir/kafka" ;;
    tansu) perf/peers/tansu.sh stop "$broker_dir/tansu" ;;
  esac
  rm -rf "$broker_dir"; broker_pid=""
}
