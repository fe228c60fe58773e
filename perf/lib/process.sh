# shellcheck shell=bash
# Background processes of the peer scripts (perf/peers/*.sh), tracked by a pid file in
# their data dir: waiting until one listens, and stopping one.

# Waits until 127.0.0.1:PORT accepts, or fails (printing LOG's tail) when the process of
# PID_FILE exits first or TIMEOUT_S passes.
wait_listening() { # PORT PID_FILE LOG TIMEOUT_S
  local port=$1 pid_file=$2 log=$3 deadline=$((SECONDS + $4))
  while ((SECONDS < deadline)); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    kill -0 "$(cat "$pid_file")" 2>/dev/null || { tail -30 "$log" >&2; echo "exited before listening on $port" >&2; return 1; }
    sleep 0.1
  done
  echo "did not listen on $port within $4 s" >&2
  return 1
}

# SIGTERM to the process of PID_FILE, then SIGKILL if it is still there after TIMEOUT_S.
stop_pid_file() { # PID_FILE TIMEOUT_S
  local pid deadline=$((SECONDS + $2))
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  while ((SECONDS < deadline)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
