#!/usr/bin/env bash
# build.sh builds istiod's pilot-discovery from the istio.io/istio Go module and caches it per
# version outside the repository, next to the two files from the same module that a local istiod
# needs: the kube-gateway injection template and Istio's CRDs.
#
# Usage: build.sh            builds what is missing, then prints ISTIO_VERSION=..., ISTIO_DIR=...
#        build.sh --print    prints those lines only
#
# ISTIO_DIR holds bin/pilot-discovery, kube-gateway.yaml
# (manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml) and crd-all.gen.yaml
# (manifests/charts/base/files/crd-all.gen.yaml).
#
# Why this version: the Go module proxy serves istio.io/istio only as this pseudo-version (what
# @latest resolves to; a commit on the release-1.31 branch); tagged versions are refused.
# A wrapper module of our own pins that version for the build; the template and CRDs are copied
# from the same downloaded module, so the three always match.
# Concurrent runs are safe: the build holds a lock, and the result is moved into place whole.
set -euo pipefail

ISTIO_VERSION="${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook/istiod"
ISTIO_DIR="$CACHE_ROOT/$ISTIO_VERSION"

print() { printf 'ISTIO_VERSION=%s\nISTIO_DIR=%s\n' "$ISTIO_VERSION" "$ISTIO_DIR"; }
log() { echo "istiod: $*" >&2; }
complete() { [[ -x "$ISTIO_DIR/bin/pilot-discovery" && -f "$ISTIO_DIR/kube-gateway.yaml" && -f "$ISTIO_DIR/crd-all.gen.yaml" ]]; }

if [[ "${1:-}" == "--print" ]]; then
  print
  exit 0
fi

if complete; then
  log "cached istiod in $ISTIO_DIR"
  print
  exit 0
fi

command -v go >/dev/null || { log "go is required to build istiod for the tests"; exit 2; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 2; }
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/build.lock"
flock 9
# Another run may have finished the build while this one waited for the lock.
if complete; then
  log "cached istiod in $ISTIO_DIR"
  print
  exit 0
fi

start=$(date +%s)
work="$CACHE_ROOT/src-$ISTIO_VERSION"
tmp="$ISTIO_DIR.tmp"
rm -rf "$tmp"
mkdir -p "$work" "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT

cd "$work"
if [[ ! -f go.mod ]]; then
  upstream_mod=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  go_line=$(grep -m1 '^go ' "$upstream_mod")
  printf 'module lb-probe-webhook.test/istiod\n\n%s\n\nrequire istio.io/istio %s\n' "$go_line" "$ISTIO_VERSION" > go.mod.tmp
  mv go.mod.tmp go.mod
fi
src=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
[[ -d "$src" ]] || { log "go mod download printed no source directory for istio.io/istio@$ISTIO_VERSION"; exit 1; }
cp "$src/manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml" "$tmp/kube-gateway.yaml"
cp "$src/manifests/charts/base/files/crd-all.gen.yaml" "$tmp/crd-all.gen.yaml"
chmod u+w "$tmp"/*.yaml

revision="${ISTIO_VERSION##*-}"
ldflags="-s -w -X 'istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION'"
ldflags+=" -X 'istio.io/istio/pkg/version.buildGitRevision=$revision' -X 'istio.io/istio/pkg/version.buildStatus=Clean'"
log "building pilot-discovery from istio.io/istio@$ISTIO_VERSION (first run on this machine: several minutes)"
go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/pilot-discovery" istio.io/istio/pilot/cmd/pilot-discovery

rm -rf "$ISTIO_DIR"
mv "$tmp" "$ISTIO_DIR"
log "built in $(( $(date +%s) - start ))s: $ISTIO_DIR"
print
