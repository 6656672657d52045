#!/usr/bin/env bash
# Differential IMAP test (docs/dovecot-differential.md): the same scripted conversations
# against three private Debian Dovecots — rbox on the environment's Ceph (CEPH_CONF from
# `e2e/env path` or `e2e/ceph-micro env`), Maildir, and sdbox (the reference for answers
# that depend on the mailbox list layout) — through e2e/tests/imap_differential.py.
# Own pools per run, so reruns never see old mail.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
[[ -n "${CEPH_CONF:-}" ]] || die "CEPH_CONF not set: source \"\$(e2e/env path)\" first"

run=$(date +%s)-$$
export RBOX_POOL="diff-mail-$run" RBOX_INDEX_POOL="diff-index-$run" RBOX_RUN=$run
D="$RBOX_E2E_DIR/imap-differential-$run"
cargo build -q --locked -p rbox-dovecot
trap 'for k in rbox maildir sdbox; do "$E2E_ROOT/dovecot-rbox" down "$D/$k" >/dev/null 2>&1 || true; done
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done' EXIT

port() {  # start one Dovecot, print its IMAP port
  "$E2E_ROOT/dovecot-rbox" up "$D/$1" "$1" | sed -n 's/^export RBOX_DC_IMAP_PORT=//p'
}
RBOX_DIFF_RBOX_PORT=$(port rbox)
RBOX_DIFF_MAILDIR_PORT=$(port maildir)
RBOX_DIFF_SDBOX_PORT=$(port sdbox)
export RBOX_DIFF_RBOX_PORT RBOX_DIFF_MAILDIR_PORT RBOX_DIFF_SDBOX_PORT

rc=0
/usr/bin/python3 "$E2E_ROOT/tests/imap_differential.py" || rc=$?
for k in rbox maildir sdbox; do "$E2E_ROOT/dovecot-rbox" down "$D/$k" >/dev/null 2>&1 || true; done

if grep -HE 'Panic:|Fatal:|killed with signal (4|6|7|8|11)' "$D"/*/log/dovecot.log 2>/dev/null; then
  echo "imap-differential: 0 passed, 1 failed (a Dovecot process crashed; see $D/*/log)"
  rc=1
fi
exit $rc
