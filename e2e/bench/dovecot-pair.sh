# Sourced by the Dovecot benchmarks: a release plugin build, then two private Dovecots side by
# side — rbox on fresh pools of the micro Ceph ($R) and Maildir on local disk ($M) — stopped
# and their pools removed on exit. Sets R, M and RBOX_POOL; `pair_port KIND DIR` gives a port.
[[ -n "${CEPH_CONF:-}" ]] || die "CEPH_CONF not set"
cargo build -q --release --locked -p rbox-dovecot
run=$(date +%s)
export RBOX_PROFILE=release RBOX_POOL="bench-mail-$run" RBOX_INDEX_POOL="bench-index-$run"
R="$RBOX_E2E_DIR/bench-$1-rbox-$run" M="$RBOX_E2E_DIR/bench-$1-maildir-$run"
trap '"$E2E_ROOT/dovecot-rbox" down "$R"; "$E2E_ROOT/dovecot-rbox" down "$M"; rm -f "$R.env" "$M.env"
      for p in "$RBOX_POOL" "$RBOX_INDEX_POOL"; do
        ceph --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
      done' EXIT
"$E2E_ROOT/dovecot-rbox" up "$R" rbox >"$R.env" || die "rbox Dovecot did not start"
"$E2E_ROOT/dovecot-rbox" up "$M" maildir >"$M.env" || die "Maildir Dovecot did not start"

# pair_port IMAP|LMTP DIR: that instance's port
pair_port() { (source "$2.env" && eval echo "\$RBOX_DC_$1_PORT"); }
