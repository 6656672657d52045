#!/usr/bin/env bash
# LMTP deliveries/s at 16 sessions: rbox (release plugin) vs Maildir on local disk vs
# `rados bench write`, in one run on the same machine. Needs CEPH_CONF (micro Ceph).
# MAILS=800 SESSIONS=16 by default.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
[[ -n "${CEPH_CONF:-}" ]] || die "CEPH_CONF not set"
cargo build -q --release --locked -p rbox-dovecot
run=$(date +%s)
export RBOX_PROFILE=release RBOX_POOL="bench-mail-$run" RBOX_INDEX_POOL="bench-index-$run"
R="$RBOX_E2E_DIR/bench-rbox-$run" M="$RBOX_E2E_DIR/bench-maildir-$run"
trap '"$E2E_ROOT/dovecot-rbox" down "$R"; "$E2E_ROOT/dovecot-rbox" down "$M"
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done' EXIT
rport=$(source <("$E2E_ROOT/dovecot-rbox" up "$R" rbox) && echo "$RBOX_DC_LMTP_PORT")
mport=$(source <("$E2E_ROOT/dovecot-rbox" up "$M" maildir) && echo "$RBOX_DC_LMTP_PORT")
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$E2E_ROOT/bench/dovecot-lmtp.py" "$rport" "$mport" "$RBOX_POOL" \
  "$R/run/master.pid" "$M/run/master.pid"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
