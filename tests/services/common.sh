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
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
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

# deb_install PKG...: apt-get install Debian packages whose maintainer scripts must not start
# services (a temporary policy-rc.d says no, unless one is there already); retries once after
# `apt-get update` for a fresh machine's empty or stale package lists.
deb_install() {
  local sudo="" policy=/usr/sbin/policy-rc.d made_policy="" rc=0
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to apt-get install $*"; return 1; }
    sudo="sudo -n"
  fi
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from logml tests/services: no service starts during apt-get\nexit 101\n' \
      | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && made_policy=1
  fi
  log "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >&2 || {
    log "apt-get install failed; updating the package lists and trying again"
    $sudo apt-get update -q >&2 &&
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >&2
  } || rc=$?
  [ -z "$made_policy" ] || $sudo rm -f "$policy"
  return $rc
}

# no_system_service UNIT: stop and disable a packaged service if an init system runs it, so
# that only the instance we start ourselves (on our own ports) is up
no_system_service() {
  local unit="$1" sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    if systemctl is-active --quiet "$unit" 2>/dev/null || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      log "disabling the system service $unit (the tests run their own instance)"
      $sudo systemctl disable --now "$unit" >&2 || true
    fi
  elif [ -x "/etc/init.d/$unit" ] && "/etc/init.d/$unit" status >/dev/null 2>&1; then
    log "stopping the init.d service $unit (the tests run their own instance)"
    $sudo "/etc/init.d/$unit" stop >&2 || true
  fi
}

# port_free HOST:PORT: true if nothing accepts TCP connections there
port_free() {
  ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}
