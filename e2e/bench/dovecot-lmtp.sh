#!/usr/bin/env bash
# LMTP deliveries/s at 16 sessions: rbox (release plugin) vs Maildir on local disk vs
# `rados bench write`, in one run on the same machine. Needs CEPH_CONF (micro Ceph).
# MAILS=800 SESSIONS=16 by default.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
source "$E2E_ROOT/bench/dovecot-pair.sh" lmtp
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$E2E_ROOT/bench/dovecot-lmtp.py" "$(pair_port LMTP "$R")" "$(pair_port LMTP "$M")" \
  "$RBOX_POOL" "$R/run/master.pid" "$M/run/master.pid"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
