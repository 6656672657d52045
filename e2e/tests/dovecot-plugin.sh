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
# The OSD-stop fault gets a micro Ceph of its own (never the shared one's OSD), started
# now so that it comes up while the other tests run. RBOX_DC_OSD_FAULT=0 skips it.
osd_fault=${RBOX_DC_OSD_FAULT:-1}
if [[ $osd_fault == 1 ]]; then
  "$E2E_ROOT/ceph-micro" up "$D-ceph" >"$D-ceph.log" 2>&1 &
  ceph_pid=$!
fi
cargo build -q --locked -p rbox-dovecot
cargo build -q --locked -p rbox-core --features cli --bin rbox
export RBOX_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/rbox"
nocaps=client.dc-nocaps-$run badkey=client.dc-badkey-$run
trap '"$E2E_ROOT/dovecot-rbox" down "$D" >/dev/null 2>&1 || true
      for d in "$D"-*/; do "$E2E_ROOT/dovecot-rbox" down "$d" >/dev/null 2>&1 || true; done
      [[ $osd_fault != 1 ]] || { wait "$ceph_pid" 2>/dev/null; "$E2E_ROOT/ceph-micro" down "$D-ceph" >/dev/null 2>&1; } || true
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL" "dc-quota-$run"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done
      for e in "$nocaps" "$badkey"; do ceph --connect-timeout 15 auth rm "$e" >/dev/null 2>&1 || true; done' EXIT
# A Maildir Dovecot next to it: the other side of the dsync tests.
md_env=$("$E2E_ROOT/dovecot-rbox" up "$D-maildir" maildir)
export RBOX_DC_MD_DIR RBOX_DC_MD_IMAP_PORT
RBOX_DC_MD_DIR=$(sed -n "s/^export RBOX_DC_DIR='\(.*\)'$/\1/p" <<<"$md_env")
RBOX_DC_MD_IMAP_PORT=$(sed -n 's/^export RBOX_DC_IMAP_PORT=//p' <<<"$md_env")
# shellcheck disable=SC1090
source <("$E2E_ROOT/dovecot-rbox" up "$D" rbox)
rc=0
/usr/bin/python3 "$E2E_ROOT/tests/dovecot_plugin.py" || rc=$?
# Dovecot takes ~2 s to stop: the instances stop in the background, all waited for before
# the logs are checked for crashes.
downs=()
for d in "$D" "$D-maildir"; do "$E2E_ROOT/dovecot-rbox" down "$d" >/dev/null 2>&1 & downs+=($!); done

# Faults, each a Dovecot of its own: fault NAME TESTS LOG-REGEX [VAR=VALUE...] runs the
# dovecot_plugin.py functions named TESTS* and then wants a line matching LOG-REGEX in
# that Dovecot's log (what the operator sees).
fault() {
  local name=$1 tests=$2 logre=$3 dir="$D-$1"; shift 3
  mkdir -p "$dir"
  ( unset RBOX_DC_IMAP_PORT
    export RBOX_SKIP_POOLS=1 RBOX_CONNECT_TIMEOUT=3 RBOX_OP_TIMEOUT=3 "$@"
    # shellcheck disable=SC1090
    source <("$E2E_ROOT/dovecot-rbox" up "$dir" rbox)
    RBOX_DC_TESTS=$tests /usr/bin/python3 "$E2E_ROOT/tests/dovecot_plugin.py" | sed "s/^dovecot-plugin:/dovecot-plugin-$name:/"
    exit "${PIPESTATUS[0]}" ) || rc=1
  "$E2E_ROOT/dovecot-rbox" down "$dir" >/dev/null 2>&1 & downs+=($!)
  if ! grep -qaE "$logre" "$dir/log/dovecot.log"; then
    echo "dovecot-plugin-$name: 0 passed, 1 failed (no log line matching '$logre' in $dir/log/dovecot.log)"
    rc=1
  fi
}
conf_for() {  # a client conf: the cluster's monitors, keyring $2
  printf '[global]\nmon_host = %s\n[client]\nkeyring = %s\n' \
    "$(ceph-conf -c "$CEPH_CONF" --lookup mon_host)" "$2" > "$1"
  chmod o+r "$1" "$2"
}
printf '[global]\nmon_host = 127.0.0.1:%s\nkeyring = %s\n' "$(free_port)" \
  "$(dirname "$CEPH_CONF")/ceph.client.admin.keyring" > "$D-unreachable.conf"
chmod o+r "$D-unreachable.conf"
fault unreachable fault_ceph_unavailable 'rbox: connecting to Ceph: .*' CEPH_CONF="$D-unreachable.conf"
fault no-pool fault_ceph_unavailable "rbox: .*dc-missing-$run" RBOX_POOL="dc-missing-$run" RBOX_INDEX_POOL="dc-missing-$run"
# cephx: caps that do not cover the pool, and a key the cluster does not know.
ceph --connect-timeout 15 auth get-or-create "$nocaps" mon 'allow r' osd "allow rw pool=dc-other-$run" -o "$D-nocaps.keyring" >/dev/null
ceph --connect-timeout 15 auth get-or-create "$badkey" mon 'allow r' osd 'allow rw' >/dev/null
printf '[%s]\n\tkey = %s\n' "$badkey" "$(ceph-authtool --gen-print-key)" > "$D-badkey.keyring"
conf_for "$D-nocaps.conf" "$D-nocaps.keyring"
conf_for "$D-badkey.conf" "$D-badkey.keyring"
fault cephx-caps fault_ceph_unavailable 'rbox: .*(ermission denied|not permitted)' CEPH_CONF="$D-nocaps.conf" RBOX_RADOS_USER="$nocaps"
fault cephx-key fault_ceph_unavailable 'rbox: connecting to Ceph: .*(ermission denied|not permitted)' CEPH_CONF="$D-badkey.conf" RBOX_RADOS_USER="$badkey"
# The object size limit as the client sees it (librmb reads osd_max_object_size too).
fault oversized fault_oversized 'rbox: saving .*exceeds osd_max_object_size' RBOX_DC_MAX_OBJECT=1048576 \
  RBOX_DC_PLUGIN_EXTRA="  rbox_ceph_client_osd_max_object_size = 1048576"
ceph --connect-timeout 15 osd pool create "dc-quota-$run" 8 >/dev/null 2>&1
ceph --connect-timeout 15 osd pool application enable "dc-quota-$run" rbox >/dev/null 2>&1
fault pool-quota fault_pool_quota 'rbox: .*(quota|No space)' RBOX_POOL="dc-quota-$run"
if [[ $osd_fault == 1 ]]; then
  if wait "$ceph_pid"; then
    fault osd-stop fault_osd_stopped 'rbox: saving .*timed out' CEPH_CONF="$D-ceph/ceph.conf" RBOX_SKIP_POOLS=0 \
      RBOX_DC_CEPH_MICRO="$E2E_ROOT/ceph-micro" RBOX_DC_CEPH_DIR="$D-ceph"
  else
    echo "dovecot-plugin-osd-stop: 0 passed, 1 failed (its micro Ceph did not start; see $D-ceph.log)"; rc=1
  fi
  "$E2E_ROOT/ceph-micro" down "$D-ceph" >/dev/null 2>&1 & downs+=($!)
fi
wait "${downs[@]}" || true

# The lmtp processes the SIGKILL test killed itself (their pids in killed-pids) are no crash.
killed=$(sed 's/.*/child & killed with signal 9/' "$D/killed-pids" 2>/dev/null | paste -sd'|')
if grep -hE 'Panic:|Fatal:|killed with signal (4|6|7|8|11)' "$D"*/log/dovecot.log "$D/log/dovecot.log" 2>/dev/null |
   grep -vE "${killed:-^$}"; then
  echo "dovecot-plugin: 0 passed, 1 failed (a Dovecot process crashed; see $D/log)"
  rc=1
fi
exit $rc
