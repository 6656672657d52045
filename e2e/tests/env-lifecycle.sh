#!/usr/bin/env bash
# Lifecycle checks of the local environment, run by `make test` before the Rust e2e tests:
# `up` twice in a row works; a second micro Ceph runs beside the first; `down` of the second
# leaves no process of it behind. Leaves the main environment up for the tests that follow.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

passed=0; failed=0
check() { # name, command...
  local name=$1; shift
  if "$@" >/dev/null; then passed=$((passed + 1)); log "ok   $name"; else failed=$((failed + 1)); log "FAIL $name"; fi
}

second="$RBOX_E2E_DIR-second-ceph"
fsid_of() { ceph -c "$1/ceph.conf" --connect-timeout 10 fsid 2>/dev/null; }
pids_of() { cat "$1"/run/*.pid 2>/dev/null; }
none_alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }

check "env up (first)" "$E2E_ROOT/env" up
check "env up (second time, idempotent)" "$E2E_ROOT/env" up
check "env status" "$E2E_ROOT/env" status
check "second micro ceph beside the first" "$E2E_ROOT/ceph-micro" up "$second"
a=$(fsid_of "$RBOX_E2E_DIR/ceph"); b=$(fsid_of "$second")
check "two clusters are distinct (fsid $a vs $b)" test -n "$a" -a -n "$b" -a "$a" != "$b"
second_pids=$(pids_of "$second")
check "second ceph down" "$E2E_ROOT/ceph-micro" down "$second"
# shellcheck disable=SC2086
check "no process of the second ceph left" none_alive $second_pids
check "first ceph still healthy" "$E2E_ROOT/ceph-micro" status "$RBOX_E2E_DIR/ceph"
rm -rf "$second"

echo "env-lifecycle: $passed passed, $failed failed"
(( failed == 0 ))
