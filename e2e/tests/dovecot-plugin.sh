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
      for d in "$D"-*/; do "$E2E_ROOT/dovecot-rbox" down "$d" >/dev/null 2>&1 || true; done
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done' EXIT
# A Maildir Dovecot next to it: the other side of the dsync tests.
md_env=$("$E2E_ROOT/dovecot-rbox" up "$D-maildir" maildir)
export RBOX_DC_MD_DIR RBOX_DC_MD_IMAP_PORT
RBOX_DC_MD_DIR=$(sed -n "s/^export RBOX_DC_DIR='\(.*\)'$/\1/p" <<<"$md_env")
RBOX_DC_MD_IMAP_PORT=$(sed -n 's/^export RBOX_DC_IMAP_PORT=//p' <<<"$md_env")
# shellcheck disable=SC1090
source <("$E2E_ROOT/dovecot-rbox" up "$D" rbox)
rc=0
/usr/bin/python3 "$E2E_ROOT/tests/dovecot_plugin.py" || rc=$?
"$E2E_ROOT/dovecot-rbox" down "$D" >/dev/null 2>&1 || true

# Faults: unreachable monitors, then a missing pool. Each a Dovecot of its own.
fault() {
  local name=$1 dir="$D-$1"; shift
  mkdir -p "$dir"
  ( unset RBOX_DC_IMAP_PORT
    export "$@" RBOX_SKIP_POOLS=1 RBOX_CONNECT_TIMEOUT=3 RBOX_OP_TIMEOUT=3
    # shellcheck disable=SC1090
    source <("$E2E_ROOT/dovecot-rbox" up "$dir" rbox)
    RBOX_DC_TESTS=fault_ /usr/bin/python3 "$E2E_ROOT/tests/dovecot_plugin.py" | sed "s/^dovecot-plugin:/dovecot-plugin-$name:/"
    exit "${PIPESTATUS[0]}" ) || rc=1
  "$E2E_ROOT/dovecot-rbox" down "$dir" >/dev/null 2>&1 || true
}
bad="$D-unreachable.conf"
printf '[global]\nmon_host = 127.0.0.1:%s\nkeyring = %s\n' "$(free_port)" \
  "$(dirname "$CEPH_CONF")/ceph.client.admin.keyring" > "$bad"
chmod o+r "$bad"
fault unreachable CEPH_CONF="$bad"
fault no-pool RBOX_POOL="dc-missing-$run" RBOX_INDEX_POOL="dc-missing-$run"

if grep -hE 'Panic:|Fatal:|killed with signal (4|6|7|8|11)' "$D"*/log/dovecot.log "$D/log/dovecot.log" 2>/dev/null; then
  echo "dovecot-plugin: 0 passed, 1 failed (a Dovecot process crashed; see $D/log)"
  rc=1
fi
exit $rc
