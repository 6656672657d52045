# Builds and caches the Go binaries of the local environment. Sourced.
# Each tool set is built from a pinned module under e2e/tools/<set>/ and cached under
# $RBOX_CACHE/tools/<set>-<hash of go.mod+go.sum>/, so a warm start does not rebuild and a
# version bump (a new go.mod) builds into a new directory.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# set name -> packages to build
declare -A TOOL_PKGS=(
  [kubernetes]="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
  [etcd]="go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3"
  [kwok]="sigs.k8s.io/kwok/cmd/kwok"
  [helm]="helm.sh/helm/v4/cmd/helm"
)
# binary name for packages whose last path element is not the binary's name
declare -A TOOL_BIN_NAME=(
  [go.etcd.io/etcd/server/v3]=etcd
  [go.etcd.io/etcd/etcdctl/v3]=etcdctl
)

# Version stamps (the Go module versions, so `kubectl version` and `helm version` tell the truth).
module_version() { awk -v m="$2" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v/) {print $(i+1); exit}}' "$E2E_ROOT/tools/$1/go.mod"; }
tool_ldflags() {
  local set=$1 v
  case "$set" in
    kubernetes)
      v=$(module_version kubernetes k8s.io/kubernetes)
      local minor=${v#v1.}; minor=${minor%%.*}
      local p=k8s.io/component-base/version
      echo "-X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean" ;;
    helm)
      v=$(module_version helm helm.sh/helm/v4)
      echo "-X helm.sh/helm/v4/internal/version.version=$v" ;;
  esac
}

tool_dir() {
  local set=$1 hash
  hash=$(cat "$E2E_ROOT/tools/$set/go.mod" "$E2E_ROOT/tools/$set/go.sum" "$E2E_ROOT/lib/tools.sh" | sha256sum | cut -c1-12)
  echo "$RBOX_CACHE/tools/$set-$hash"
}

build_tool_set() {
  local set=$1 dir; dir=$(tool_dir "$set")
  if [[ -f "$dir/.complete" ]]; then return 0; fi
  command -v go >/dev/null || die "the Go toolchain is required to build $set (go not on PATH)"
  log "building $set into $dir (first time only; cached afterwards)"
  local t0=$SECONDS tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (
    cd "$E2E_ROOT/tools/$set"
    export GOTOOLCHAIN=local GOFLAGS=-mod=readonly
    for pkg in ${TOOL_PKGS[$set]}; do
      local name=${TOOL_BIN_NAME[$pkg]:-${pkg##*/}}
      go build -trimpath -ldflags="-s -w $(tool_ldflags "$set")" -o "$tmp/$name" "$pkg"
    done
  ) || { rm -rf "$tmp"; die "building $set failed"; }
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  log "built $set in $((SECONDS - t0)) s"
}

# Build (if needed) every set and print a PATH prefix holding all binaries.
ensure_tools() {
  local path=""
  for set in kubernetes etcd kwok helm; do
    build_tool_set "$set"
    path="${path:+$path:}$(tool_dir "$set")"
  done
  echo "$path"
}
