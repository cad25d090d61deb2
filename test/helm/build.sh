#!/usr/bin/env bash
# build.sh builds the helm CLI (v4, and v3 for the compatibility check) from the Go module
# proxy and fetches, from their Go modules, the
# CRDs the chart's optional objects need: prometheus-operator's ServiceMonitor and PrometheusRule,
# cert-manager's Issuer and Certificate. It also builds rulecheck (test/helm/rulecheck), which
# loads alert rules with Prometheus's own rule loader. Each is cached per version outside the
# repository.
#
# Usage: build.sh            builds what is missing, then prints HELM=..., HELM3=...,
#                            PROMETHEUS_CRDS=..., CERT_MANAGER_CRDS=... and RULECHECK=...
#        build.sh --print    prints those lines only
#
# Concurrent runs are safe: the work happens under an flock on the cache directory, into
# .tmp directories that are moved into place only when complete.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v4.3.1}"
HELM3_VERSION="${HELM3_VERSION:-v3.22.0}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.19.1}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.305.0}"   # the one prometheus-operator v0.85.0 requires
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook"
HELM_DIR="$CACHE_ROOT/helm/$HELM_VERSION"
HELM3_DIR="$CACHE_ROOT/helm/$HELM3_VERSION-k8s"   # -k8s: built with the Kubernetes version flags
CRD_DIR="$CACHE_ROOT/prometheus-operator/$PROMETHEUS_OPERATOR_VERSION/crds"
CM_CRD_DIR="$CACHE_ROOT/cert-manager/$CERT_MANAGER_VERSION/crds"
RULECHECK_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/rulecheck/main.go"
# Keyed by the Prometheus version and the source's content, so an edit of main.go rebuilds it.
RULECHECK_DIR="$CACHE_ROOT/rulecheck/prometheus-$PROMETHEUS_VERSION-$(sha256sum "$RULECHECK_SRC" | cut -c1-12)"

print() {
  printf 'HELM=%s\nHELM3=%s\nPROMETHEUS_CRDS=%s\nCERT_MANAGER_CRDS=%s\nRULECHECK=%s\n' \
    "$HELM_DIR/bin/helm" "$HELM3_DIR/bin/helm" "$CRD_DIR" "$CM_CRD_DIR" "$RULECHECK_DIR/bin/rulecheck"
}
log() { echo "helm: $*" >&2; }

if [[ "${1:-}" == "--print" ]]; then
  print
  exit 0
fi

ready() {
  [[ -x "$HELM_DIR/bin/helm" && -x "$HELM3_DIR/bin/helm" && -f "$CRD_DIR/monitoring.coreos.com_servicemonitors.yaml" \
    && -f "$CRD_DIR/monitoring.coreos.com_prometheusrules.yaml" \
    && -f "$CM_CRD_DIR/cert-manager.io_certificates.yaml" \
    && -x "$RULECHECK_DIR/bin/rulecheck" ]]
}
if ready; then
  log "cached helm and CRDs"
  print
  exit 0
fi

command -v go >/dev/null || { log "go is required to build helm"; exit 2; }
command -v flock >/dev/null || { log "flock (util-linux) is required"; exit 2; }
export GOTOOLCHAIN=local CGO_ENABLED=0
unset GOFLAGS   # `go install module@version` builds the module as published; -mod=mod is refused there

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.helm.lock"
flock 9
if ready; then   # another run finished while this one waited
  print
  exit 0
fi

# CRDs from Go modules -------------------------------------------------------------------------
fetch_crds() {   # fetch_crds MODULE VERSION DIR FILE... : copies FILEs (paths in the module) into DIR
  local module=$1 version=$2 dest=$3 src
  shift 3
  [[ -f "$dest/$(basename "${!#}")" ]] && return 0   # the last file is written last: all are there
  mkdir -p "$CACHE_ROOT/tmp"
  src=$(cd "$CACHE_ROOT/tmp" && go mod download -json "$module@$version" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  [[ -n "$src" ]] || { log "could not download $module $version"; exit 1; }
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  for file in "$@"; do cp "$src/$file" "$dest.tmp/"; done
  chmod u+w "$dest.tmp"/*.yaml
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
  log "$module $version CRDs in $dest"
}
fetch_crds github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" "$CRD_DIR" \
  example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml \
  example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml
fetch_crds github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION" "$CM_CRD_DIR" \
  deploy/crds/cert-manager.io_issuers.yaml deploy/crds/cert-manager.io_certificates.yaml

# helm v4 and v3 -----------------------------------------------------------------------------
build_helm() {   # build_helm MAJOR VERSION DIR
  local major=$1 version=$2 dir=$3 start
  [[ -x "$dir/bin/helm" ]] && return 0
  start=$(date +%s)
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/bin"
  log "building helm $version (first run on this machine: several minutes)"
  local ldflags="-s -w -X helm.sh/helm/$major/internal/version.version=$version"
  ldflags+=" -X helm.sh/helm/$major/internal/version.gitTreeState=clean"
  if [[ $major == v3 ]]; then
    # Helm v3's Makefile sets the Kubernetes version `helm template` and `helm lint` assume from
    # its client-go (v0.N.M gives 1.N); without it they assume 1.20.
    local gomod minor
    gomod=$(cd "$CACHE_ROOT/tmp" && go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    minor=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod")
    [[ -n "$minor" ]] || { log "no k8s.io/client-go in $gomod"; exit 1; }
    for pkg in pkg/chartutil pkg/lint/rules; do
      ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$minor"
    done
  fi
  GOBIN="$dir.tmp/bin" go install -trimpath -ldflags "$ldflags" "helm.sh/helm/$major/cmd/helm@$version"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  log "built helm $version in $(( $(date +%s) - start ))s: $dir/bin/helm"
}
mkdir -p "$CACHE_ROOT/tmp"
trap 'rm -rf "$HELM_DIR.tmp" "$HELM3_DIR.tmp" "$RULECHECK_DIR.tmp"' EXIT
build_helm v4 "$HELM_VERSION" "$HELM_DIR"
build_helm v3 "$HELM3_VERSION" "$HELM3_DIR"

# rulecheck ---------------------------------------------------------------------------------
if [[ ! -x "$RULECHECK_DIR/bin/rulecheck" ]]; then
  start=$(date +%s)
  rm -rf "$RULECHECK_DIR.tmp" && mkdir -p "$RULECHECK_DIR.tmp/src" "$RULECHECK_DIR.tmp/bin"
  cp "$RULECHECK_SRC" "$RULECHECK_DIR.tmp/src/main.go"
  printf 'module lb-probe-webhook.test/rulecheck\n\ngo 1.24.0\n\nrequire github.com/prometheus/prometheus %s\n' \
    "$PROMETHEUS_VERSION" > "$RULECHECK_DIR.tmp/src/go.mod"
  log "building rulecheck against Prometheus $PROMETHEUS_VERSION"
  (cd "$RULECHECK_DIR.tmp/src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o ../bin/rulecheck .)
  rm -rf "$RULECHECK_DIR" && mv "$RULECHECK_DIR.tmp" "$RULECHECK_DIR"
  log "built rulecheck in $(( $(date +%s) - start ))s"
fi

print
