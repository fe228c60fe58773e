#!/usr/bin/env bash
# Apache Kafka as a peer broker on this machine, for side-by-side benchmarks (issues 14, 15).
# Resolves org.apache.kafka:kafka_2.13 and kafka-tools from Maven Central into
# target/peers/kafka/lib (Maven caches them in ~/.m2, so later runs work offline); nothing is
# committed. The broker is a single-node KRaft combined broker+controller on 127.0.0.1 with the
# settings a Kafka user benchmarks with: the distribution's start-script JVM flags
# (G1, -Xmx1G), default flush policy (page cache; no fsync per message), one log dir on the
# same disk as Spindle's ./data.
#
#   perf/peers/kafka.sh setup                 resolve the jars; prints the lib folder
#   perf/peers/kafka.sh start DATA_DIR [PORT] format DATA_DIR and start the broker (default 9092)
#   perf/peers/kafka.sh stop DATA_DIR         stop the broker started on DATA_DIR
#   perf/peers/kafka.sh tool CLASS ARGS...    run a Kafka tool class, e.g.
#        org.apache.kafka.tools.ProducerPerformance --topic t --num-records 1000 ...
#   perf/peers/kafka.sh config DATA_DIR       print the server.properties used
#   perf/peers/kafka.sh version               print the version
#
# KAFKA_VERSION overrides the version (default 4.4.0, the newest that resolved here).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=perf/lib/process.sh
source perf/lib/process.sh
version=${KAFKA_VERSION:-4.4.0}
home=target/peers/kafka-$version
lib=$home/lib

die() { echo "kafka.sh: $*" >&2; exit 2; }

setup() {
  if [[ -f $lib/.complete ]]; then echo "$lib"; return; fi
  mkdir -p "$home"
  cat >"$home/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>spindle.perf</groupId><artifactId>kafka-peer</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  (cd "$home" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime) >&2
  touch "$lib/.complete"
  echo "$lib"
}

java_opts=(-Xmx1G -Xms1G -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true)

write_config() {
  local dir=$1 port=$2
  cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$((port + 10000))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$((port + 10000))
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/log
num.partitions=2
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
}

cmd=${1:-}; shift || true
case $cmd in
  setup) setup ;;
  version) echo "$version" ;;
  config) [[ $# -ge 1 ]] || die "config DATA_DIR [PORT]"; write_config "$(realpath -m "$1")" "${2:-9092}" ;;
  start)
    [[ $# -ge 1 ]] || die "start DATA_DIR [PORT]"
    setup >/dev/null
    dir=$(realpath -m "$1"); port=${2:-9092}
    rm -rf "$dir"; mkdir -p "$dir"
    write_config "$dir" "$port" >"$dir/server.properties"
    cluster=$(java -cp "$lib/*" kafka.tools.StorageTool random-uuid)
    java -cp "$lib/*" kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "format failed"; }
    nohup java "${java_opts[@]}" -cp "$lib/*" kafka.Kafka "$dir/server.properties" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    wait_listening "$port" "$dir/pid" "$dir/server.log" 60 || die "broker did not start"
    echo "kafka $version on 127.0.0.1:$port pid $(cat "$dir/pid")"
    ;;
  stop)
    [[ $# -ge 1 ]] || die "stop DATA_DIR"
    stop_pid_file "$1/pid" 30
    ;;
  tool)
    [[ $# -ge 1 ]] || die "tool CLASS ARGS..."
    setup >/dev/null
    exec java -Xmx512M -cp "$lib/*" "$@"
    ;;
  *) die "usage: kafka.sh setup | start DATA_DIR [PORT] | stop DATA_DIR | tool CLASS ARGS... | config DATA_DIR" ;;
esac
