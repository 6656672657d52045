#!/usr/bin/env bash
# Scale benchmark of the operator (docs/benchmarks.md, "Operator at scale"): one MailCluster,
# P MailPools (each two real Ceph pools with one PG each) and F DovecotFleets spread over
# them (kwok runs their pods), in steps, measuring for each step:
#   time until every object is Ready (MailCluster, MailPool: Ready; DovecotFleet: Available),
#   operator CPU seconds (with its doveconf children), RSS after the step and peak RSS,
#   reconciles per second, the load average of the machine;
# and in steady state:
#   1. idle: nothing changes for STEADY seconds (reconciles, requests, Ceph writes);
#   2. touched: every object gets a new annotation (metadata only: the spec is unchanged), so
#      each one reconciles once more; Kubernetes reads/writes and Ceph writes per reconcile
#      (the target: zero writes).
#
#   e2e/bench/scale.sh [POOLS] [FLEET_STEPS]      default: 50 "50 200 500"
#
# The environment is $RBOX_E2E_DIR (default the shared /tmp/rbox-e2e): at full size use your
# own, `RBOX_E2E_DIR=/tmp/rbox-scale e2e/bench/scale.sh`, since 100 pools and 500 pods crowd
# a shared single-OSD cluster. Brings the environment up if needed and cleans up after itself
# (namespace, pools, the extra kwok nodes). Results: $RBOX_E2E_DIR/scale/table.md.
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
POOLS=${1:-50}
STEPS=${2:-"50 200 500"}
STEADY=${STEADY:-60}
ROUNDS=${ROUNDS:-2}   # touch rounds in steady state
NS=rbox-scale
PREFIX=rbs$$
"$E2E_ROOT/env" up >/dev/null
# shellcheck disable=SC1090
source "$("$E2E_ROOT/env" path)"
cargo build -q --release -p rbox-operator
BIN="$REPO_ROOT/target/release/rbox-operator"
OUT="$RBOX_E2E_DIR/scale"; rm -rf "$OUT"; mkdir -p "$OUT"
C() { ceph -c "$CEPH_CONF" --connect-timeout 15 "$@"; }

# The local environment has 3 kwok nodes of 110 pods; one pod per fleet needs more.
max_fleets=0; for s in $STEPS; do if (( s > max_fleets )); then max_fleets=$s; fi; done
extra_nodes=$(( (max_fleets + 109) / 110 ))
for i in $(seq 1 "$extra_nodes"); do
  cat <<EON
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-scale-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, rbox-bench: scale, kubernetes.io/hostname: kwok-scale-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EON
done | kubectl apply -f - >/dev/null

kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for condition=Established crd --all --timeout=60s >/dev/null
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
  # The operator releases the MailPool finalizers (reclaimPolicy Retain), then it stops.
  timeout 300 kubectl delete ns "$NS" --wait=true >/dev/null 2>&1 || true
  kill "$OP" 2>/dev/null || true
  kubectl delete node -l rbox-bench=scale --wait=false >/dev/null 2>&1 || true
  for p in $(C osd pool ls 2>/dev/null | grep "^$PREFIX-" || true); do
    C osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
wait_for 30 curl -sf "http://127.0.0.1:$PORT/healthz" || die "operator did not start ($OUT/operator.log)"

# The value is the last field: label values may hold spaces (call="osd pool ls").
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $NF} END {printf "%d\n", s}'; }
# utime + stime of the operator and of its waited-for children (doveconf checks).
cpu_s() { awk '{printf "%.1f\n", ($14 + $15 + $16 + $17) / 100}' "/proc/$OP/stat"; }
rss_mib() { awk '/^VmRSS/ {printf "%.1f\n", $2 / 1024}' "/proc/$OP/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f\n", $2 / 1024}' "/proc/$OP/status"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
count_cond() { # kind, condition type
  kubectl -n "$NS" get "$1" -o json | python3 -c '
import json, sys
t = sys.argv[1]
items = json.load(sys.stdin)["items"]
print(sum(1 for i in items if any(c["type"] == t and c["status"] == "True" for c in (i.get("status") or {}).get("conditions", []))))' "$2"
}
# Wait until `want` objects of a kind have a condition; samples the load average meanwhile.
LOADS=()
wait_cond() { # kind, condition, want, timeout
  local end=$((SECONDS + $4)) n
  while :; do
    LOADS+=("$(load1)")
    n=$(count_cond "$1" "$2")
    [[ "$n" -ge "$3" ]] && return 0
    (( SECONDS > end )) && { log "only $n/$3 $1 $2 after $4 s"; return 1; }
    sleep 2
  done
}
# Range of the samples; the caller clears LOADS (this runs in a command substitution).
load_range() { printf '%s\n' "${LOADS[@]}" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s–%s", lo, hi}'; }

kubectl -n "$NS" apply --server-side -f - >/dev/null <<EOY
apiVersion: mail.rbox.io/v1alpha1
kind: MailCluster
metadata: {name: bench}
spec:
  ceph:
    external: {monitorsSecretKey: mon_host, keyringSecret: {name: ceph-admin}, user: client.admin}
  health: {canaryIntervalSeconds: 300}
EOY
wait_cond mailclusters Ready 1 120 || die "MailCluster not Ready"
LOADS=()
log "creating $POOLS MailPools"
t0=$SECONDS; c0=$(cpu_s); r0=$(metric rbox_operator_reconciles_total)
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
wait_cond mailpools PoolsReady "$POOLS" 1800 || die "pools not PoolsReady"
pools_ready_s=$((SECONDS - t0))
wait_cond mailpools Ready "$POOLS" 1800 || die "pools not Ready"
pool_s=$((SECONDS - t0)); pool_cpu=$(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN{printf "%.1f", b - a}')
r1=$(metric rbox_operator_reconciles_total)
rps=$(awk -v r=$((r1 - r0)) -v s="$pool_s" 'BEGIN{printf "%.1f", (s > 0 ? r / s : r)}')
log "$POOLS MailPools PoolsReady in $pools_ready_s s, Ready in $pool_s s (operator CPU $pool_cpu s)"
pg=$(C osd pool ls detail -f json | python3 -c '
import json, sys
p = [x for x in json.load(sys.stdin) if x["pool_name"].startswith(sys.argv[1] + "-")]
n = [x["pg_num"] for x in p]
print("%d pools, pg_num %s, %d PGs" % (len(p), "/".join(map(str, sorted(set(n)))), sum(n)))' "$PREFIX")
log "Ceph: $pg"

rss_pools=$(rss_mib)
{
  echo "| step | objects | time to all Ready | operator CPU | RSS after | peak RSS | reconciles/s | load avg (1 min) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  echo "| MailCluster + $POOLS MailPools ($pg) | $((POOLS + 1)) | $pool_s s (PoolsReady: $pools_ready_s s) | $pool_cpu s | $rss_pools MiB | $(hwm_mib) MiB | $rps | $(load_range) |"
} > "$OUT/table.md"
LOADS=()

have=0; prev_rss=$rss_pools; growth=()
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
  # The operator's share: every fleet has its StatefulSet (the rest is kube-controller-manager,
  # scheduler and kwok starting the pod, and the fleet's status following it).
  until (( $(kubectl -n "$NS" get statefulsets --no-headers 2>/dev/null | wc -l) >= want )); do
    (( SECONDS - t0 > 900 )) && die "StatefulSets not created"
    sleep 1
  done
  sts_s=$((SECONDS - t0))
  wait_cond dovecotfleets Available "$want" 900 || die "fleets not Available"
  secs=$((SECONDS - t0)); cpu=$(awk -v a="$c0" -v b="$(cpu_s)" 'BEGIN{printf "%.1f", b - a}')
  r1=$(metric rbox_operator_reconciles_total)
  rps=$(awk -v r=$((r1 - r0)) -v s="$secs" 'BEGIN{printf "%.1f", (s > 0 ? r / s : r)}')
  sleep 10  # let the last status writes land before reading RSS
  rss=$(rss_mib)
  echo "| +$((want - have)) fleets (total $want) | $((POOLS + 1 + want)) | $secs s (StatefulSets: $sts_s s) | $cpu s | $rss MiB | $(hwm_mib) MiB | $rps | $(load_range) |" >> "$OUT/table.md"
  LOADS=()
  growth+=("$have → $want fleets: $(awk -v a="$prev_rss" -v b="$rss" -v n=$((want - have)) 'BEGIN{printf "%+.1f MiB, %.2f MiB per 100 fleets", b - a, (b - a) * 100 / n}')")
  log "$want fleets Available in $secs s, RSS $rss MiB"
  have=$want; prev_rss=$rss
done
{
  echo
  echo "Memory growth (RSS after each step):"
  for g in "${growth[@]}"; do echo "- $g"; done
} >> "$OUT/table.md"

snapshot() { # reconciles (all, MailPool, DovecotFleet), kube reads, kube writes, Ceph writes, Ceph calls, CPU
  local m; m=$(curl -s "http://127.0.0.1:$PORT/metrics")
  sum() { awk -v m="$1" -v l="${2:-}" '($1 == m || index($1, m "{") == 1) && (l == "" || index($0, l) > 0) {s += $NF} END {printf "%d", s}' <<<"$m"; }
  echo "$(sum rbox_operator_reconciles_total) $(sum rbox_operator_reconciles_total mailpool) $(sum rbox_operator_reconciles_total dovecotfleet) $(sum rbox_operator_kube_api_reads) $(sum rbox_operator_kube_api_writes) $(sum rbox_operator_ceph_writes_total) $(sum rbox_operator_ceph_call_duration_seconds_count) $(cpu_s)"
}
report() { # title, before, after
  read -r r0 p0 f0 g0 w0 cw0 cc0 c0 <<<"$2"; read -r r1 p1 f1 g1 w1 cw1 cc1 c1 <<<"$3"
  local rec=$((r1 - r0))
  echo
  echo "$1: reconciles $rec (MailPool $((p1 - p0)), DovecotFleet $((f1 - f0))), Kubernetes reads $((g1 - g0)), Kubernetes writes $((w1 - w0)), Ceph calls $((cc1 - cc0)) of which writes $((cw1 - cw0)), operator CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.1f", b - a}') s."
  if (( rec > 0 )); then
    echo "Per reconcile: $(awk -v w=$((w1 - w0)) -v r="$rec" 'BEGIN{printf "%.2f", w / r}') writes, $(awk -v g=$((g1 - g0)) -v r="$rec" 'BEGIN{printf "%.2f", g / r}') reads, $(awk -v c=$((cw1 - cw0)) -v r="$rec" 'BEGIN{printf "%.2f", c / r}') Ceph writes."
  fi
  if (( p1 - p0 > 0 )); then
    echo "Ceph calls per MailPool reconcile: $(awk -v c=$((cc1 - cc0)) -v r=$((p1 - p0)) 'BEGIN{printf "%.1f", c / r}')."
  fi
}

log "steady state: $STEADY s with no change"
sleep 20  # let the last status writes and requeues settle
s0=$(snapshot); sleep "$STEADY"; s1=$(snapshot)
report "Idle for $STEADY s ($((POOLS + 1 + have)) objects)" "$s0" "$s1" >> "$OUT/table.md"

# Every object reconciles once more (a fleet twice: its own change and its MailPool's); several
# rounds show whether memory keeps growing with work when the object count does not.
want_rec=$((POOLS + have))
for round in $(seq 1 "$ROUNDS"); do
  log "steady state: touching every object (metadata only), round $round"
  s0=$(snapshot)
  kubectl -n "$NS" annotate mailpools,dovecotfleets --all --overwrite "bench.rbox.io/touch=$round" >/dev/null
  end=$((SECONDS + 600)); prev=""
  # Until every object reconciled at least once after the touch and the counters settle.
  while (( SECONDS < end )); do
    sleep 5
    cur=$(snapshot)
    read -r r _ <<<"$cur"; read -r r0 _ <<<"$s0"
    if (( r - r0 >= want_rec )) && [[ "${cur% *}" == "${prev% *}" ]]; then break; fi
    prev=$cur
  done
  s1=$(snapshot)
  report "Touch round $round: all $((POOLS + have)) MailPools and DovecotFleets annotated (metadata only; specs unchanged)" "$s0" "$s1" >> "$OUT/table.md"
  echo "RSS after round $round: $(rss_mib) MiB (peak $(hwm_mib) MiB)." >> "$OUT/table.md"
done
{
  echo
  echo "Warnings and errors in the operator log: $(grep -c -E 'WARN|ERROR' "$OUT/operator.log" || true)."
  echo "Ceph writes over the whole run, by command:"
  curl -s "http://127.0.0.1:$PORT/metrics" | grep '^rbox_operator_ceph_writes_total' | sed 's/^rbox_operator_ceph_writes_total/- /'
} >> "$OUT/table.md"
cat "$OUT/table.md"
