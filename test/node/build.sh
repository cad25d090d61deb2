#!/usr/bin/env bash
# build.sh makes what the real node of the test suite runs, each cached by version outside the
# repository:
#   - the Debian packages it needs (installed when missing: runc, the CNI plugins, iptables,
#     nftables, conntrack, buildah, iproute2, util-linux, and gcc, libc6-dev and binutils for pause);
#   - kubelet, kube-controller-manager, kube-scheduler and kube-proxy, built with kube-apiserver by
#     test/e2e/controlplane/build.sh --node from the same Kubernetes module;
#   - containerd, its runc shim and ctr, from the Go module github.com/containerd/containerd/v2;
#   - the pause image: test/node/pause.c built static, as a docker-archive for `ctr images import`.
#
# Usage: build.sh            builds what is missing, then prints KEY=value lines (BIN_DIR,
#                            NODE_BIN_DIR, GATEWAY_CRDS, CONTAINERD_BIN_DIR, PAUSE_ARCHIVE,
#                            PAUSE_IMAGE, CNI_BIN_DIR, RUNC)
#        build.sh --print    prints those lines only
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook/node"
CONTAINERD_DIR="$CACHE_ROOT/containerd-$CONTAINERD_VERSION"
PAUSE_HASH=$(cat "$HERE/pause.c" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
PAUSE_IMAGE="localhost/lb-probe-webhook-pause:$PAUSE_HASH"
PAUSE_ARCHIVE="$CACHE_ROOT/pause-$PAUSE_HASH.tar"
PACKAGES=(runc containernetworking-plugins iptables nftables conntrack buildah iproute2 util-linux gcc libc6-dev binutils)

log() { echo "node: $*" >&2; }
die() { log "$*"; exit 2; }

print() {
  bash "$HERE/../e2e/controlplane/build.sh" --print --node
  printf 'CONTAINERD_BIN_DIR=%s\nPAUSE_ARCHIVE=%s\nPAUSE_IMAGE=%s\nCNI_BIN_DIR=%s\nRUNC=%s\n' \
    "$CONTAINERD_DIR/bin" "$PAUSE_ARCHIVE" "$PAUSE_IMAGE" /usr/lib/cni /usr/sbin/runc
}
if [[ "${1:-}" == "--print" ]]; then
  print
  exit 0
fi

# Debian packages --------------------------------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "the node needs the Debian packages ${missing[*]}; install them as root (apt-get install ${missing[*]})"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; } \
    || die "apt-get install ${missing[*]} failed"
fi

# Kubernetes' node binaries (with the control plane) ---------------------------------------------
bash "$HERE/../e2e/controlplane/build.sh" --node >/dev/null

command -v go >/dev/null || die "go is required to build containerd"
command -v flock >/dev/null || die "flock (util-linux) is required"
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.node.lock"
flock 9
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

# containerd -------------------------------------------------------------------------------------
if [[ ! -x "$CONTAINERD_DIR/bin/containerd" || ! -x "$CONTAINERD_DIR/bin/containerd-shim-runc-v2" || ! -x "$CONTAINERD_DIR/bin/ctr" ]]; then
  start=$(date +%s)
  src="$CONTAINERD_DIR/src"
  mkdir -p "$src"
  if [[ ! -f "$src/go.mod" ]]; then
    upstream_mod=$(cd "$src" && go mod download -json "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    [[ -n "$upstream_mod" ]] || die "could not download containerd $CONTAINERD_VERSION"
    printf 'module lb-probe-webhook.test/node/containerd\n\n%s\n\nrequire github.com/containerd/containerd/v2 %s\n' \
      "$(grep -m1 '^go ' "$upstream_mod")" "$CONTAINERD_VERSION" > "$src/go.mod.tmp"
    mv "$src/go.mod.tmp" "$src/go.mod"
  fi
  log "building containerd $CONTAINERD_VERSION (first run on this machine: a few minutes)"
  rm -rf "$CONTAINERD_DIR/bin.tmp"
  pkg=github.com/containerd/containerd/v2
  (cd "$src" && go build -trimpath -tags no_btrfs,no_devmapper,no_zfs \
    -ldflags "-s -w -X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Package=$pkg" \
    -o "$CONTAINERD_DIR/bin.tmp/" "$pkg/cmd/containerd" "$pkg/cmd/containerd-shim-runc-v2" "$pkg/cmd/ctr")
  rm -rf "$CONTAINERD_DIR/bin" && mv "$CONTAINERD_DIR/bin.tmp" "$CONTAINERD_DIR/bin"
  log "built containerd in $(( $(date +%s) - start ))s: $CONTAINERD_DIR/bin"
fi

# The pause image ----------------------------------------------------------------------------------
if [[ ! -f "$PAUSE_ARCHIVE" ]]; then
  command -v gcc >/dev/null || die "gcc is required to build the pause image"
  work=$(mktemp -d "$CACHE_ROOT/pause.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  gcc -static -Os -o "$work/pause" "$HERE/pause.c"
  strip "$work/pause"
  store=(--root "$work/store" --runroot "$work/run" --storage-driver vfs)
  container=$(buildah "${store[@]}" from scratch)
  buildah "${store[@]}" copy "$container" "$work/pause" /pause >/dev/null
  buildah "${store[@]}" config --entrypoint '["/pause"]' --user 65535:65535 "$container"
  buildah "${store[@]}" commit --quiet --rm "$container" "$PAUSE_IMAGE" >/dev/null
  buildah "${store[@]}" push --quiet "$PAUSE_IMAGE" "docker-archive:$PAUSE_ARCHIVE.tmp:$PAUSE_IMAGE" >/dev/null
  buildah "${store[@]}" rmi --all >/dev/null 2>&1 || true
  mv "$PAUSE_ARCHIVE.tmp" "$PAUSE_ARCHIVE"
  log "built the pause image $PAUSE_IMAGE"
fi

print
