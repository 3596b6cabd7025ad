# Shared helpers for tests/services/svc/*: pid files, waiting, stopping. Sourced, not run.
run_dir="${LOGML_SERVICES_RUN:?run via tests/services/up}"
cache_dir="${LOGML_SERVICES_CACHE:?run via tests/services/up}"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# is_running NAME: true if our pid file names a live process
is_running() {
  local pidfile="$run_dir/$1.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# wait_for NAME SECONDS CMD...: retry CMD until it succeeds, the process dies or time runs out
wait_for() {
  local name="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      log "$name exited while starting; last lines of $run_dir/$name.log:"; tail -n 30 "$run_dir/$name.log" >&2; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name not healthy after ${secs}s; see $run_dir/$name.log"; tail -n 30 "$run_dir/$name.log" >&2; return 1
    fi
    sleep 1
  done
}

# stop_pid NAME: stop the process (and its group) recorded in our pid file, TERM then KILL
stop_pid() {
  local pidfile="$run_dir/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$pidfile"
}

# start_bg NAME CMD...: start CMD in its own process group, log to run dir, record the pid
start_bg() {
  local name="$1"; shift
  setsid "$@" >"$run_dir/$name.log" 2>&1 < /dev/null &
  echo $! > "$run_dir/$name.pid"
}
