#!/usr/bin/env bash
# Debian's Dovecot 2.3.19 with our rbox plugin on the environment's Ceph (CEPH_CONF from
# `e2e/env path`): IMAP, LMTP, POP3, doveadm and the byte format, through real clients
# (e2e/tests/dovecot_plugin.py). Own pools per run, so reruns never see old mail.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
[[ -n "${CEPH_CONF:-}" ]] || die "CEPH_CONF not set: source \"\$(e2e/env path)\" first"

run=$(date +%s)-$$
export RBOX_POOL="dc-mail-$run" RBOX_INDEX_POOL="dc-index-$run" RBOX_RUN=$run
D="$RBOX_E2E_DIR/dovecot-rbox-$run"
cargo build -q --locked -p rbox-dovecot
trap '"$E2E_ROOT/dovecot-rbox" down "$D" >/dev/null 2>&1 || true
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done' EXIT
# shellcheck disable=SC1090
source <("$E2E_ROOT/dovecot-rbox" up "$D" rbox)
rc=0
/usr/bin/python3 "$E2E_ROOT/tests/dovecot_plugin.py" || rc=$?
if grep -E 'Panic|Fatal|signal [0-9]+' "$D/log/dovecot.log"; then
  echo "dovecot-plugin: 0 passed, 1 failed (a Dovecot process crashed; see $D/log)"
  rc=1
fi
exit $rc
