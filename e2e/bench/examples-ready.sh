#!/usr/bin/env bash
# "kubectl apply -k examples/ → everything Ready" on the local environment (docs/benchmarks.md,
# "Operator at scale"): with the operator already running, apply the minimal platform and time
# until the MailCluster and the MailPool are Ready and the DovecotFleet is Available.
#
#   e2e/bench/examples-ready.sh [REPS]      default 3; prints one line per repetition
#
# Each repetition uses a fresh namespace and fresh Ceph pool names (the example's names with a
# unique suffix, rewritten in a copy of examples/), and removes both afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
REPS=${1:-3}
"$E2E_ROOT/env" up >/dev/null
# shellcheck disable=SC1090
source "$("$E2E_ROOT/env" path)"
cargo build -q --release -p rbox-operator
BIN="$REPO_ROOT/target/release/rbox-operator"
OUT=$(mktemp -d)
C() { ceph -c "$CEPH_CONF" --connect-timeout 15 "$@"; }
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for condition=Established crd --all --timeout=60s >/dev/null

cond() { # kind name condition → 0 when True
  [[ $(kubectl -n "$NS" get "$1" "$2" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}" 2>/dev/null) == True ]]
}
now() { date +%s.%N; }
OP=""; NS=""; pools=()
cleanup() {
  [[ -n "$NS" ]] && { timeout 120 kubectl delete ns "$NS" --wait=true >/dev/null 2>&1 || true; }
  [[ -n "$OP" ]] && { kill "$OP" 2>/dev/null || true; }
  for p in "${pools[@]}"; do C osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true; done
  OP=""; NS=""; pools=()
}
trap 'cleanup; rm -rf "$OUT"' EXIT

for rep in $(seq 1 "$REPS"); do
  sfx=$$-$rep; NS=rbox-examples-$sfx
  pools=("rbox-demo-mail-$sfx" "rbox-demo-index-$sfx")
  rm -rf "$OUT/ex"; cp -r examples "$OUT/ex"
  sed -i "s/name: rbox-demo-mail$/name: rbox-demo-mail-$sfx/; s/name: rbox-demo-index$/name: rbox-demo-index-$sfx/" "$OUT/ex/minimal.yaml"
  kubectl create ns "$NS" >/dev/null
  kubectl -n "$NS" create secret generic ceph-admin --from-file=keyring="$RBOX_E2E_CEPH_KEYRING" \
    --from-literal=mon_host="$RBOX_E2E_CEPH_MON_HOST" >/dev/null
  port=$(free_port)
  RUST_LOG=warn "$BIN" run --watch-namespace "$NS" --no-leader-election \
    --metrics-addr "127.0.0.1:$port" > "$OUT/operator-$rep.log" 2>&1 &
  OP=$!
  wait_for 30 curl -sf "http://127.0.0.1:$port/healthz" || die "operator did not start"
  t0=$(now)
  kubectl -n "$NS" apply -k "$OUT/ex" >/dev/null
  wait_for 300 cond mailcluster local Ready || die "MailCluster not Ready"
  t_mc=$(now)
  wait_for 300 cond mailpool mail Ready || die "MailPool not Ready"
  t_mp=$(now)
  wait_for 300 cond dovecotfleet imap Available || die "DovecotFleet not Available"
  t_df=$(now)
  all=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')
  printf 'rep %d: MailCluster Ready %.1f s, MailPool Ready %.1f s, DovecotFleet Available %.1f s, everything %s s (load %s)\n' \
    "$rep" "$(echo "$t_mc - $t0" | bc)" "$(echo "$t_mp - $t0" | bc)" "$(echo "$t_df - $t0" | bc)" "$all" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  cleanup
done
