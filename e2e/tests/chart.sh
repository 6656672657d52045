#!/usr/bin/env bash
# The Helm chart against the real local API server: lint, template accepted by a server-side
# dry run, bad values refused by values.schema.json, install + uninstall, and no wildcard in
# the RBAC. Needs the environment up and its env file sourced (make test does both).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
: "${RBOX_E2E_KUBECONFIG:?source the env file of e2e/env first (make test does)}"
CHART="$REPO_ROOT/charts/rbox-operator"
NS="rbox-chart-$$"

passed=0; failed=0
check() { # name, command...
  local name=$1; shift
  if "$@" >/dev/null 2>"$RBOX_E2E_DIR/chart-check.err"; then passed=$((passed + 1)); log "ok   $name"
  else failed=$((failed + 1)); log "FAIL $name: $(tail -3 "$RBOX_E2E_DIR/chart-check.err")"; fi
}
refused() { # name, expected message fragment, helm args...
  local name=$1 want=$2; shift 2
  local out; out=$(helm template t "$CHART" "$@" 2>&1) && { failed=$((failed + 1)); log "FAIL $name: accepted"; return; }
  if grep -q -- "$want" <<<"$out"; then passed=$((passed + 1)); log "ok   $name"
  else failed=$((failed + 1)); log "FAIL $name: message was: $out"; fi
}
no_wildcards() { ! helm template t "$CHART" --set rook.enabled=true | grep -nE '^\s*-?\s*(verbs|resources|apiGroups):.*"?\*"?'; }
server_dry_run() { helm template t "$CHART" --namespace "$NS" --set networkPolicy.enabled=true | kubectl apply --dry-run=server -f -; }

kubectl create namespace "$NS" >/dev/null
check "helm lint" helm lint "$CHART"
check "template accepted by the API server (server-side dry run)" server_dry_run
check "RBAC has no wildcard" no_wildcards
refused "replicaCount 0 refused" "minimum" --set replicaCount=0
refused "unknown top-level key refused" "additional properties 'imagee' not allowed" --set imagee.tag=x
refused "bad pull policy refused" "pullPolicy" --set image.pullPolicy=Sometimes
refused "two replicas without leader election refused" "needs leaderElection.enabled" --set leaderElection.enabled=false
check "helm install" helm install t "$CHART" --namespace "$NS" --wait --timeout 90s
check "operator Deployment available" kubectl -n "$NS" rollout status deploy/t-rbox-operator --timeout=60s
check "helm uninstall" helm uninstall t --namespace "$NS" --wait
kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true

echo "chart: $passed passed, $failed failed"
(( failed == 0 ))
