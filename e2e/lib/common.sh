# Shared helpers for the e2e scripts. Sourced, not executed.
set -euo pipefail

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_ROOT="$(cd "$E2E_ROOT/.." && pwd)"
# Expensive builds live outside the repository, keyed by what was built.
RBOX_CACHE="${RBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbox-operator}"
# Runtime state of the local environment (certs, data dirs, logs, pid files).
RBOX_E2E_DIR="${RBOX_E2E_DIR:-/tmp/rbox-e2e}"

log() { printf '%s [e2e] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '%s [e2e] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race with other starters is
# acceptable because every daemon fails loudly on a taken port and `up` is re-runnable).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Wait until a command succeeds, up to $1 seconds. Exit status 2 from the command means
# "will never succeed" (e.g. the daemon died) and stops the wait at once.
wait_for() {
  local secs=$1; shift
  local end=$((SECONDS + secs)) rc
  while true; do
    rc=0; "$@" >/dev/null 2>&1 || rc=$?
    (( rc == 0 )) && return 0
    (( rc == 2 )) && return 1
    (( SECONDS >= end )) && return 1
    sleep 0.3
  done
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# Stop a daemon by the pid in file $1: SIGTERM, wait up to $2 s, then SIGKILL.
stop_pidfile() {
  local f=$1 secs=${2:-15}
  [[ -f "$f" ]] || return 0
  local pid; pid=$(cat "$f" 2>/dev/null || true)
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + secs))
    while pid_alive "$pid" && (( SECONDS < end )); do sleep 0.2; done
    if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  fi
  rm -f "$f"
}

# Install Debian packages that are missing (idempotent; apt-get update only when needed).
apt_ensure() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  (( ${#missing[@]} == 0 )) && return 0
  log "apt-get install ${missing[*]}"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
