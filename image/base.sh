#!/usr/bin/env bash
# base.sh assembles, from Debian packages, the two images the Dockerfile starts from, for machines
# that cannot pull the public ones (`make image BASE_IMAGE=local`, and the test suite):
#
#   runtime  the layout of gcr.io/distroless/nodejs24-debian12:nonroot, made the way distroless
#            makes it: the files of the Debian packages libc6, libgcc-s1, libstdc++6, libssl3,
#            ca-certificates, tzdata, netbase and base-files (no shell, no package manager), an
#            /etc/passwd with nonroot (65532), Node at /nodejs/bin/node, user 65532.
#   build    what the Dockerfile's build stage needs of node:24-bookworm-slim: the same libraries,
#            dash as /bin/sh, coreutils, findutils, Node at /usr/local/bin/node and npm.
#
# Node is the binary the npm package `node` (package.json devDependencies) installs into
# node_modules, so run `npm ci` first; npm comes from the npm registry. Both images are tagged with
# a hash of every input (package versions, Node and npm versions, this script), so a second run
# finds them and builds nothing.
#
# Usage: image/base.sh      prints BASE_IMAGE=... and BUILD_IMAGE=... (image names in buildah's store)
# Environment: BUILDAH_ROOT, BUILDAH_RUNROOT: a buildah store of its own (default: the one buildah
#              and podman share); NPM_VERSION (default 11.19.1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NPM_VERSION="${NPM_VERSION:-11.19.1}"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/lb-probe-webhook/image"
RUNTIME_PACKAGES=(libc6 libgcc-s1 libstdc++6 libssl3 ca-certificates tzdata netbase base-files)
# coreutils's libraries: it is linked against libacl, libattr, libselinux (and its pcre2) and libgmp.
BUILD_PACKAGES=("${RUNTIME_PACKAGES[@]}" dash coreutils findutils libacl1 libattr1 libselinux1 libpcre2-8-0 libgmp10)

log() { echo "image/base.sh: $*" >&2; }
die() { log "$*"; exit 2; }
# A command that fails under set -e says which, so a failed build never ends without a word.
trap 'log "line $LINENO: \`$BASH_COMMAND\` failed (exit $?)"' ERR

command -v buildah >/dev/null || die "buildah is required (Debian: apt-get install buildah)"
command -v apt-get >/dev/null || die "apt-get is required: the base is made from Debian packages"
command -v flock >/dev/null || die "flock (util-linux) is required"

buildah_() {
  local store=()
  [[ -n "${BUILDAH_ROOT:-}" ]] && store+=(--root "$BUILDAH_ROOT")
  [[ -n "${BUILDAH_RUNROOT:-}" ]] && store+=(--runroot "$BUILDAH_RUNROOT")
  buildah ${store[@]+"${store[@]}"} "$@"
}

node_version=$(sed -n 's/^    "node": "\([0-9.]*\)",\{0,1\}$/\1/p' "$ROOT/package.json")
[[ -n "$node_version" ]] || die "package.json has no devDependency \"node\" with an exact version"
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) die "no Node binary for $(uname -m)" ;;
esac
node_bin="$ROOT/node_modules/node/node_modules/node-linux-$node_arch/bin/node"
# A later `npm install` prunes the platform package; the package's own bin/node (the same binary,
# hard-linked at install) stays. Only a binary goes into the image, never a wrapper script.
[[ -x "$node_bin" ]] || node_bin="$ROOT/node_modules/node/bin/node"
[[ -x "$node_bin" && "$(head -c 4 "$node_bin")" == $'\x7fELF' ]] || die "$node_bin is missing or not a binary: run npm ci first"
[[ "$("$node_bin" --version)" == "v$node_version" ]] || die "$node_bin is not Node $node_version: run npm ci"

# The exact package versions apt would install (one apt-cache call: each takes seconds on a busy
# machine); they are part of the tags.
candidates=$(apt-cache policy "${BUILD_PACKAGES[@]}" | awk '/^[^ ]/ { sub(":$", ""); pkg = $0 } /^  Candidate: / { print pkg "=" $2 }')
versions() {
  local pkg v
  for pkg in "$@"; do
    v=$(grep -m1 "^$pkg=" <<<"$candidates" | cut -d= -f2-)
    [[ -n "$v" && "$v" != "(none)" ]] || die "apt knows no candidate for $pkg (run apt-get update)"
    printf '%s=%s\n' "$pkg" "$v"
  done
}
runtime_versions=$(versions "${RUNTIME_PACKAGES[@]}")
build_versions=$(versions "${BUILD_PACKAGES[@]}")
script_hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-64)
tag() { printf '%s\n' "$@" "node=$node_version" "$script_hash" | sha256sum | cut -c1-12; }
RUNTIME_IMAGE="localhost/lb-probe-webhook-base:node$node_version-$(tag "$runtime_versions")"
BUILD_IMAGE="localhost/lb-probe-webhook-build:node$node_version-$(tag "$build_versions" "npm=$NPM_VERSION")"

print() { printf 'BASE_IMAGE=%s\nBUILD_IMAGE=%s\n' "$RUNTIME_IMAGE" "$BUILD_IMAGE"; }
have() { buildah_ inspect --type image "$1" >/dev/null 2>&1; }
if have "$RUNTIME_IMAGE" && have "$BUILD_IMAGE"; then
  print
  exit 0
fi

mkdir -p "$CACHE_ROOT/debs"
exec 9>"$CACHE_ROOT/.base.lock"
flock 9
work=$(mktemp -d "$CACHE_ROOT/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# fetch PKG=VERSION...: the .deb files, downloaded once into the cache.
fetch() {
  local spec file missing=()
  for spec in "$@"; do
    file=$(printf '%s_%s_*.deb' "${spec%%=*}" "${spec#*=}" | sed 's/:/%3a/')
    compgen -G "$CACHE_ROOT/debs/$file" >/dev/null || missing+=("$spec")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "downloading ${missing[*]}"
  (cd "$CACHE_ROOT/debs" && apt-get -o APT::Sandbox::User=root download "${missing[@]}" >&2) || die "apt-get download failed"
}

# rootfs DIR PKG=VERSION...: unpacks the packages' files into DIR, as distroless does (no maintainer
# scripts run; documentation dropped except the copyright files).
rootfs() {
  local dir=$1 spec deb
  shift
  fetch "$@"
  mkdir -p "$dir"
  for spec in "$@"; do
    deb=$(compgen -G "$CACHE_ROOT/debs/$(printf '%s_%s_*.deb' "${spec%%=*}" "${spec#*=}" | sed 's/:/%3a/')" | head -n1)
    dpkg-deb -x "$deb" "$dir"
  done
  find "$dir/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$dir/usr/share/man" "$dir/usr/share/info" "$dir/usr/share/lintian" "$dir/usr/share/locale"
  # ca-certificates' maintainer script would build the bundle; do what it does.
  mkdir -p "$dir/etc/ssl/certs"
  find "$dir/usr/share/ca-certificates" -name '*.crt' | sort | xargs cat > "$dir/etc/ssl/certs/ca-certificates.crt"
  mkdir -p "$dir/tmp" "$dir/root" "$dir/home/nonroot"
  chmod 1777 "$dir/tmp"
  chmod 700 "$dir/root"
  chown 65532:65532 "$dir/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n' > "$dir/etc/group"
  printf 'hosts: files dns\n' > "$dir/etc/nsswitch.conf"
}

# commit DIR IMAGE CONFIG...: an image of DIR's files, with buildah config flags.
commit() {
  local dir=$1 image=$2 container
  shift 2
  container=$(buildah_ from scratch)
  trap 'buildah_ rm "$container" >/dev/null 2>&1; rm -rf "$work"' EXIT
  buildah_ copy "$container" "$dir" / >/dev/null
  buildah_ config "$@" "$container"
  buildah_ commit --quiet --rm "$container" "$image" >/dev/null
  trap 'rm -rf "$work"' EXIT
  log "built $image"
}

if ! have "$RUNTIME_IMAGE"; then
  # shellcheck disable=SC2086
  rootfs "$work/runtime" $runtime_versions
  install -D -m 0755 "$node_bin" "$work/runtime/nodejs/bin/node"
  commit "$work/runtime" "$RUNTIME_IMAGE" \
    --user 65532:65532 --workingdir /home/nonroot \
    --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --entrypoint '["/nodejs/bin/node"]'
fi

if ! have "$BUILD_IMAGE"; then
  # shellcheck disable=SC2086
  rootfs "$work/build" $build_versions
  ln -sf dash "$work/build/bin/sh"
  install -D -m 0755 "$node_bin" "$work/build/usr/local/bin/node"
  tarball="$CACHE_ROOT/npm-$NPM_VERSION.tgz"
  if [[ ! -f "$tarball" ]]; then
    (cd "$work" && npm pack "npm@$NPM_VERSION" --silent >/dev/null) || die "could not download npm $NPM_VERSION"
    mv "$work/npm-$NPM_VERSION.tgz" "$tarball"
  fi
  mkdir -p "$work/build/usr/local/lib/node_modules/npm"
  tar -xzf "$tarball" -C "$work/build/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/build/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/build/usr/local/bin/npx"
  commit "$work/build" "$BUILD_IMAGE" \
    --workingdir / --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin --cmd '["node"]'
fi

# Older bases (other package versions, another Node) are of no more use: untag them. On a new
# store there are none, and grep then selects nothing and exits 1: not a failure (pipefail).
for repository in localhost/lb-probe-webhook-base localhost/lb-probe-webhook-build; do
  buildah_ images --noheading --format '{{.Name}}:{{.Tag}}' --filter "reference=$repository" 2>/dev/null \
    | { grep -vxF -e "$RUNTIME_IMAGE" -e "$BUILD_IMAGE" || true; } | while read -r old; do buildah_ rmi "$old" >/dev/null 2>&1 || true; done
done

print
