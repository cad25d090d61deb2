#!/usr/bin/env bash
# build.sh builds the test control plane (kube-apiserver, kubectl, etcd) from Go modules
# and caches the binaries per version outside the repository.
#
# Usage: build.sh [--node]          builds what is missing, then prints BIN_DIR=... and GATEWAY_CRDS=...;
#                                   --node also builds the node's kubelet, kube-controller-manager,
#                                   kube-scheduler and kube-proxy and prints NODE_BIN_DIR=...
#        build.sh --print [--node]  prints those lines only
#
# Why a wrapper module: k8s.io/kubernetes replaces every k8s.io/<staging> module with
# ./staging/src/..., which `go install k8s.io/kubernetes/cmd/...@vX` refuses. A main module
# of our own that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.N.M builds the same sources.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.5.1}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook/controlplane"
BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION-etcd-$ETCD_VERSION/bin"
NODE_BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION-node/bin"
CRD_DIR="$CACHE_ROOT/gateway-api-$GATEWAY_API_VERSION/crds"
NODE_COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

print_only=false
node=false
for arg in "$@"; do
  case "$arg" in
    --print) print_only=true ;;
    --node) node=true ;;
    *) echo "controlplane: unknown argument $arg" >&2; exit 2 ;;
  esac
done

print() {
  printf 'BIN_DIR=%s\nGATEWAY_CRDS=%s\n' "$BIN_DIR" "$CRD_DIR"
  if $node; then printf 'NODE_BIN_DIR=%s\n' "$NODE_BIN_DIR"; fi
}
log() { echo "controlplane: $*" >&2; }

if $print_only; then
  print
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the test control plane"; exit 2; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 2; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

# Gateway API standard CRDs, from the sigs.k8s.io/gateway-api module ------------------------
mkdir -p "$CACHE_ROOT"
if [[ ! -f "$CRD_DIR/gateway.networking.k8s.io_gateways.yaml" ]] \
  && exec 8>"$CACHE_ROOT/.gateway-api-$GATEWAY_API_VERSION.lock" && flock 8 \
  && [[ ! -f "$CRD_DIR/gateway.networking.k8s.io_gateways.yaml" ]]; then
  mkdir -p "$CACHE_ROOT/tmp"
  dir=$(cd "$CACHE_ROOT/tmp" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  mkdir -p "$CRD_DIR.tmp"
  cp "$dir"/config/crd/standard/*.yaml "$CRD_DIR.tmp/"
  chmod u+w "$CRD_DIR.tmp"/*.yaml
  rm -rf "$CRD_DIR" && mv "$CRD_DIR.tmp" "$CRD_DIR"
  log "Gateway API $GATEWAY_API_VERSION CRDs in $CRD_DIR"
fi

built() {
  [[ -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/kubectl" && -x "$BIN_DIR/etcd" ]] || return 1
  if $node; then
    local cmd
    for cmd in "${NODE_COMMANDS[@]}"; do [[ -x "$NODE_BIN_DIR/$cmd" ]] || return 1; done
  fi
}
if built; then
  log "cached binaries in $BIN_DIR"
  print
  exit 0
fi

# Concurrent runs (two checkouts, a test and a benchmark) build once: the second waits here, then
# finds the binaries in place.
exec 9>"$CACHE_ROOT/.k8s-$K8S_VERSION.lock"
flock 9
if built; then
  print
  exit 0
fi

work="$CACHE_ROOT/src-k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$work/kubernetes" "$work/etcd"
trap 'rm -rf "$BIN_DIR.tmp" "$NODE_BIN_DIR.tmp"' EXIT

# The wrapper module, and the flags that stamp the version the binaries report.
minor="${K8S_VERSION#v1.}"   # 35.4
staging_version="v0.$minor"
major_minor="${minor%%.*}"
if [[ ! -f "$work/kubernetes/go.mod" ]]; then
  upstream_mod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  go_line=$(grep -m1 '^go ' "$upstream_mod")
  {
    echo "module lb-probe-webhook.test/controlplane/kubernetes"
    echo
    echo "$go_line"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging_version"'#p' "$upstream_mod"
    echo ")"
  } > "$work/kubernetes/go.mod.tmp"
  mv "$work/kubernetes/go.mod.tmp" "$work/kubernetes/go.mod"
fi
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X '$pkg.gitVersion=$K8S_VERSION' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$major_minor'"
  ldflags+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
done

# build_k8s DIR COMMAND...: builds k8s.io/kubernetes/cmd/COMMAND into DIR (through DIR.tmp).
build_k8s() {
  local dir=$1 start cmd pkgs=()
  shift
  start=$(date +%s)
  for cmd in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
  log "building $* $K8S_VERSION (first run on this machine: several minutes)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  (cd "$work/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" "${pkgs[@]}")
  mkdir -p "$dir"
  mv "$dir.tmp"/* "$dir/"
  rmdir "$dir.tmp"
  log "built $* in $(( $(date +%s) - start ))s: $dir"
}

# kube-apiserver, kubectl and etcd ------------------------------------------------------------
if [[ ! -x "$BIN_DIR/kube-apiserver" || ! -x "$BIN_DIR/kubectl" || ! -x "$BIN_DIR/etcd" ]]; then
  (
    cd "$work/etcd"
    if [[ ! -f go.mod ]]; then
      printf 'module lb-probe-webhook.test/controlplane/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
    fi
    log "building etcd $ETCD_VERSION"
    rm -rf "$BIN_DIR.tmp" && mkdir -p "$BIN_DIR.tmp"
    go build -trimpath -ldflags "-s -w" -o "$BIN_DIR.tmp/etcd" go.etcd.io/etcd/server/v3
    mkdir -p "$BIN_DIR"
    mv "$BIN_DIR.tmp/etcd" "$BIN_DIR/"
  )
  build_k8s "$BIN_DIR" kube-apiserver kubectl
fi

# The node: kubelet, kube-controller-manager, kube-scheduler, kube-proxy ------------------------
if $node; then
  missing=()
  for cmd in "${NODE_COMMANDS[@]}"; do [[ -x "$NODE_BIN_DIR/$cmd" ]] || missing+=("$cmd"); done
  [[ ${#missing[@]} -eq 0 ]] || build_k8s "$NODE_BIN_DIR" "${missing[@]}"
fi

print
