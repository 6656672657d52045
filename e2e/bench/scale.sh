#!/usr/bin/env bash
# Scale benchmark of the operator (docs/benchmarks.md, "Operator at scale"): one MailCluster,
# P MailPools (each two real Ceph pools with tiny PG counts) and F DovecotFleets spread over
# them (kwok runs their pods), in steps, measuring for each step:
#   time until every object is Ready, operator CPU seconds and peak RSS, reconciles per second,
#   and in steady state (nothing changes for STEADY seconds) Kubernetes API requests and Ceph
#   writes per reconcile (the target: zero writes).
#   e2e/bench/scale.sh [POOLS] [FLEET_STEPS]      default: 50 "50 200 500"
# Uses the shared local environment (brings it up if needed) and cleans up after itself.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
POOLS=${1:-50}
STEPS=${2:-"50 200 500"}
STEADY=${STEADY:-60}
NS=rbox-scale
PREFIX=rbs$$
"$E2E_ROOT/env" up >/dev/null
# shellcheck disable=SC1090
source "$("$E2E_ROOT/env" path)"
cargo build -q --release -p rbox-operator
BIN="$REPO_ROOT/target/release/rbox-operator"
OUT="$RBOX_E2E_DIR/scale"; rm -rf "$OUT"; mkdir -p "$OUT"

kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl get ns rbox-system >/dev/null 2>&1 || kubectl create ns rbox-system >/dev/null
helm upgrade --install rbox charts/rbox-operator -n rbox-system --set replicaCount=1 \
  --set podDisruptionBudget.enabled=false >/dev/null
kubectl -n rbox-system scale deploy rbox-rbox-operator --replicas=0 >/dev/null
kubectl delete ns "$NS" --wait=true --ignore-not-found >/dev/null
kubectl create ns "$NS" >/dev/null
kubectl -n "$NS" create secret generic ceph-admin --from-file=keyring="$RBOX_E2E_CEPH_KEYRING" \
  --from-literal=mon_host="$RBOX_E2E_CEPH_MON_HOST" >/dev/null
kubectl -n "$NS" create secret generic mail-users --from-literal=passwd='u:{PLAIN}p::::::' >/dev/null

token=$(kubectl -n rbox-system create token rbox-rbox-operator --duration 4h)
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$(kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
cat > "$OUT/kubeconfig" <<EOK
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$ca"}}]
users: [{name: op, user: {token: "$token"}}]
contexts: [{name: local, context: {cluster: local, user: op}}]
current-context: local
EOK
PORT=$(free_port)
KUBECONFIG="$OUT/kubeconfig" RUST_LOG=warn "$BIN" run --watch-namespace "$NS" --no-leader-election \
  --metrics-addr "127.0.0.1:$PORT" > "$OUT/operator.log" 2>&1 &
OP=$!
cleanup() {
  kill "$OP" 2>/dev/null || true
  kubectl delete ns "$NS" --wait=false >/dev/null 2>&1 || true
  for p in $(ceph -c "$CEPH_CONF" --connect-timeout 15 osd pool ls | grep "^$PREFIX-" || true); do
    ceph -c "$CEPH_CONF" --connect-timeout 15 osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
wait_for 30 curl -sf "http://127.0.0.1:$PORT/healthz" || die "operator did not start ($OUT/operator.log)"

metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d\n", s}'; }
cpu_s() { awk '{printf "%.1f\n", ($14 + $15) / 100}' "/proc/$OP/stat"; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f\n", $2 / 1024}' "/proc/$OP/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f\n", $2 / 1024}' "/proc/$OP/status"; }
count_ready() { # kind, condition type
  kubectl -n "$NS" get "$1" -o json | python3 -c '
import json, sys
t = sys.argv[1]
items = json.load(sys.stdin)["items"]
print(sum(1 for i in items if any(c["type"] == t and c["status"] == "True" for c in (i.get("status") or {}).get("conditions", []))))' "$2"
}
wait_ready() { # kind, condition, want, timeout
  local end=$((SECONDS + $4)) n
  while :; do
    n=$(count_ready "$1" "$2")
    [[ "$n" -ge "$3" ]] && return 0
    (( SECONDS > end )) && { log "only $n/$3 $1 $2 after $4 s"; return 1; }
    sleep 2
  done
}

kubectl -n "$NS" apply --server-side -f - >/dev/null <<EOY
apiVersion: mail.rbox.io/v1alpha1
kind: MailCluster
metadata: {name: bench}
spec:
  ceph:
    external: {monitorsSecretKey: mon_host, keyringSecret: {name: ceph-admin}, user: client.admin}
  health: {canaryIntervalSeconds: 300}
EOY
log "creating $POOLS MailPools"
t0=$SECONDS; c0=$(cpu_s)
for i in $(seq 1 "$POOLS"); do
  cat <<EOY
---
apiVersion: mail.rbox.io/v1alpha1
kind: MailPool
metadata: {name: pool-$i}
spec:
  clusterRef: {name: bench}
  data: {name: $PREFIX-d$i, replicated: {size: 1, allowSizeOne: true}, failureDomain: osd, pgNumMin: 1}
  index: {name: $PREFIX-i$i, replicated: {size: 1, allowSizeOne: true}, failureDomain: osd, pgNumMin: 1}
EOY
done > "$OUT/pools.yaml"
kubectl -n "$NS" apply --server-side -f "$OUT/pools.yaml" >/dev/null
wait_ready mailpools PoolsReady "$POOLS" 1800 || die "pools not ready"
pool_s=$((SECONDS - t0)); pool_cpu=$(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN{printf "%.1f", b - a}')
log "$POOLS MailPools PoolsReady in $pool_s s (operator CPU $pool_cpu s)"

{
  echo "| step | objects | time to all Ready | operator CPU | RSS after | peak RSS | reconciles/s while converging |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  echo "| $POOLS MailPools ($((POOLS * 2)) Ceph pools) | $((POOLS + 1)) | $pool_s s | $pool_cpu s | $(rss_mib) MiB | $(hwm_mib) MiB | — |"
} > "$OUT/table.md"

have=0
for want in $STEPS; do
  log "fleets: $have -> $want"
  for i in $(seq $((have + 1)) "$want"); do
    cat <<EOY
---
apiVersion: mail.rbox.io/v1alpha1
kind: DovecotFleet
metadata: {name: f-$i}
spec:
  poolRef: {name: pool-$(( (i - 1) % POOLS + 1 ))}
  image: dovecot-rbox:bench
  replicas: 1
  auth: {passwdFile: {secretName: mail-users}}
  indexStorage: {emptyDir: {}}
EOY
  done > "$OUT/fleets-$want.yaml"
  t0=$SECONDS; c0=$(cpu_s); r0=$(metric rbox_operator_reconciles_total)
  kubectl -n "$NS" apply --server-side -f "$OUT/fleets-$want.yaml" >/dev/null
  wait_ready dovecotfleets Available "$want" 1800 || die "fleets not available"
  secs=$((SECONDS - t0)); cpu=$(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN{printf "%.1f", b - a}')
  r1=$(metric rbox_operator_reconciles_total)
  rps=$(awk -v r=$((r1 - r0)) -v s="$secs" 'BEGIN{printf "%.1f", (s > 0 ? r / s : r)}')
  echo "| +$((want - have)) fleets (total $want) | $((POOLS + 1 + want)) | $secs s | $cpu s | $(rss_mib) MiB | $(hwm_mib) MiB | $rps |" >> "$OUT/table.md"
  log "$want fleets Available in $secs s"
  have=$want
done

log "steady state: $STEADY s with no change"
sleep 20  # let the last status writes and requeues settle
r0=$(metric rbox_operator_reconciles_total); w0=$(metric rbox_operator_kube_api_writes)
g0=$(metric rbox_operator_kube_api_reads); cw0=$(metric rbox_operator_ceph_writes_total); c0=$(cpu_s)
sleep "$STEADY"
r1=$(metric rbox_operator_reconciles_total); w1=$(metric rbox_operator_kube_api_writes)
g1=$(metric rbox_operator_kube_api_reads); cw1=$(metric rbox_operator_ceph_writes_total); c1=$(cpu_s)
rec=$((r1 - r0))
{
  echo
  echo "Steady state over $STEADY s ($((POOLS + 1 + have)) objects, nothing changed):"
  echo "reconciles $rec, Kubernetes writes $((w1 - w0)), Kubernetes reads $((g1 - g0)), Ceph writes $((cw1 - cw0)), operator CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", b - a}') s."
  if (( rec > 0 )); then
    echo "Per reconcile: $(awk -v w=$((w1 - w0)) -v r="$rec" 'BEGIN{printf "%.2f", w / r}') writes, $(awk -v g=$((g1 - g0)) -v r="$rec" 'BEGIN{printf "%.2f", g / r}') reads."
  fi
} >> "$OUT/table.md"
cat "$OUT/table.md"
