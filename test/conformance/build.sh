#!/usr/bin/env bash
# build.sh builds the cloud conformance programs from each cloud controller's own Go module and caches them
# per upstream version (and per hash of our wrapper files) outside the repository.
#
# Usage: build.sh [azure|aws|aws-alb]...   builds what is missing (all by default), then prints NAME_PROBES=path lines
#        build.sh --print          prints those lines only
#
# How: the probe builders are unexported. For each cloud we copy the pinned module out of the Go module cache,
# drop one file (export_conformance.go) into the package that holds the builder, and build our small main
# package against that copy with a replace directive. The clouds pin different Kubernetes library versions,
# so each program is its own Go module.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook/conformance"

AZURE_MODULE=sigs.k8s.io/cloud-provider-azure
AZURE_VERSION=v1.34.3
AZURE_PACKAGE=pkg/provider
# The aws-load-balancer-controller module path has no /v2, so the proxy serves tag v2.17.1 under this pseudo-version.
AWS_MODULE=sigs.k8s.io/aws-load-balancer-controller
AWS_VERSION=v0.0.0-20260109171550-3b9bdb1e3fb2
AWS_PACKAGE=pkg/service
# The same module's Ingress (ALB) target group builder.
AWS_ALB_PACKAGE=pkg/ingress

log() { echo "conformance: $*" >&2; }

# key NAME VERSION prints the cache key: the upstream version plus a hash of everything of ours that goes into the build.
key() {
  local sum
  sum=$(cat "$HERE/$1"/main.go "$HERE/$1"/export_conformance.go "$HERE/$1"/go.mod "$HERE/$1"/go.sum "$HERE/build.sh" 2>/dev/null | sha256sum)
  echo "$2-${sum:0:12}"
}

bin_path() { echo "$CACHE_ROOT/$1/$(key "$1" "$2")/bin/$1-probes"; }

print() {
  printf 'AZURE_PROBES=%s\n' "$(bin_path azure "$AZURE_VERSION")"
  printf 'AWS_PROBES=%s\n' "$(bin_path aws "$AWS_VERSION")"
  printf 'AWS_ALB_PROBES=%s\n' "$(bin_path aws-alb "$AWS_VERSION")"
}

# build NAME MODULE VERSION PACKAGE builds one program unless it is cached.
build() {
  local name=$1 module=$2 version=$3 package=$4
  local out bin
  out="$CACHE_ROOT/$name/$(key "$name" "$version")"
  bin="$out/bin/$name-probes"
  [[ -x "$bin" ]] && { log "cached $bin"; return 0; }
  mkdir -p "$CACHE_ROOT/$name"
  (
    # One build per cloud at a time; a second caller waits, then finds the cache.
    exec 9>"$CACHE_ROOT/$name/lock"
    flock 9
    [[ -x "$bin" ]] && { log "cached $bin"; exit 0; }
    local start dir tmp="$out.tmp"
    start=$(date +%s)
    rm -rf "$tmp"
    mkdir -p "$tmp/bin" "$tmp/prog"
    log "downloading $module@$version"
    dir=$(cd "$tmp/prog" && go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
    [[ -n "$dir" && -d "$dir" ]] || { log "go mod download $module@$version gave no directory"; exit 1; }
    cp -R "$dir" "$tmp/src"
    chmod -R u+w "$tmp/src"
    cp "$HERE/$name/export_conformance.go" "$tmp/src/$package/zz_export_conformance.go"
    cp "$HERE/$name/main.go" "$HERE/$name/go.mod" "$tmp/prog/"
    [[ -f "$HERE/$name/go.sum" ]] && cp "$HERE/$name/go.sum" "$tmp/prog/"
    (
      cd "$tmp/prog"
      go mod edit -replace "$module=$tmp/src"
      log "building $name-probes against $module $version (first run on this machine: a few minutes)"
      go build -trimpath -ldflags "-s -w" -o "$tmp/bin/$name-probes" .
      # Point the kept copy at its final place, for anyone who rebuilds by hand.
      go mod edit -replace "$module=$out/src"
    )
    rm -rf "$out"
    mv "$tmp" "$out"
    log "built $name-probes in $(( $(date +%s) - start ))s: $bin"
  )
}

if [[ "${1:-}" == "--print" ]]; then
  print
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the conformance programs"; exit 2; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 2; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

clouds=("$@")
[[ ${#clouds[@]} -eq 0 ]] && clouds=(azure aws aws-alb)
for cloud in "${clouds[@]}"; do
  case "$cloud" in
    azure) build azure "$AZURE_MODULE" "$AZURE_VERSION" "$AZURE_PACKAGE" ;;
    aws) build aws "$AWS_MODULE" "$AWS_VERSION" "$AWS_PACKAGE" ;;
    aws-alb) build aws-alb "$AWS_MODULE" "$AWS_VERSION" "$AWS_ALB_PACKAGE" ;;
    *) log "unknown cloud '$cloud' (expected azure, aws or aws-alb)"; exit 2 ;;
  esac
done
print
