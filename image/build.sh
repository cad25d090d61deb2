#!/usr/bin/env bash
# build.sh builds the webhook's image from the Dockerfile (`make image` runs it).
#
# Usage: image/build.sh IMAGE [--archive FILE]
#   IMAGE           the name to tag, e.g. lb-probe-webhook:0.1.0 or REGISTRY/lb-probe-webhook:TAG
#   --archive FILE  also write the image as a docker-archive tarball (for `ctr images import`,
#                   `docker load`, `kind load image-archive`)
# Environment:
#   BASE_IMAGE   empty: the Dockerfile's public images (distroless and node:24-bookworm-slim);
#                local: images of the same layout that image/base.sh makes from Debian packages;
#                anything else: passed as the runtime base, the build stage keeps its default
#   BUILDER      auto (default: docker where a Docker engine answers, else buildah), docker or buildah
#   BUILDAH_ROOT, BUILDAH_RUNROOT  a buildah store of its own (default: the one buildah and podman share)
#   NODE_EXTRA_CA_CERTS  a CA file that npm in the build stage must trust (a TLS-intercepting proxy)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "image/build.sh: $*" >&2; }
die() { log "$*"; exit 2; }
# A command that fails under set -e says which, so a failed build never ends without a word.
trap 'log "line $LINENO: \`$BASH_COMMAND\` failed (exit $?)"' ERR

image=""
archive=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --archive) [[ $# -ge 2 ]] || die "--archive needs a file"; archive=$2; shift 2 ;;
    --archive=*) archive=${1#--archive=}; shift ;;
    -*) die "unknown flag $1 (usage: image/build.sh IMAGE [--archive FILE])" ;;
    *) [[ -z "$image" ]] || die "one image name only, got $image and $1"; image=$1; shift ;;
  esac
done
[[ -n "$image" ]] || die "usage: image/build.sh IMAGE [--archive FILE]"

builder="${BUILDER:-auto}"
if [[ "$builder" == auto ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
  elif command -v buildah >/dev/null; then builder=buildah
  else die "neither a Docker engine nor buildah is available (Debian: apt-get install buildah)"
  fi
fi
[[ "$builder" == docker || "$builder" == buildah ]] || die "BUILDER must be auto, docker or buildah, got $builder"

args=()
case "${BASE_IMAGE:-}" in
  "") ;;
  local)
    [[ "$builder" == buildah ]] || die "BASE_IMAGE=local builds the base with buildah: use BUILDER=buildah"
    bases=$("$ROOT/image/base.sh")
    args+=(--build-arg "$(grep '^BASE_IMAGE=' <<<"$bases")" --build-arg "$(grep '^BUILD_IMAGE=' <<<"$bases")")
    ;;
  *) args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE") ;;
esac
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  [[ -r "$NODE_EXTRA_CA_CERTS" ]] || die "NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS cannot be read"
  args+=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS")
fi

start=$(date +%s)
if [[ "$builder" == docker ]]; then
  # ${args[@]+...}: an empty array is "unbound" under set -u in bash before 4.4 (macOS's 3.2).
  DOCKER_BUILDKIT=1 docker build ${args[@]+"${args[@]}"} -t "$image" "$ROOT"
  [[ -z "$archive" ]] || docker save -o "$archive" "$image"
else
  store=()
  [[ -n "${BUILDAH_ROOT:-}" ]] && store+=(--root "$BUILDAH_ROOT")
  [[ -n "${BUILDAH_RUNROOT:-}" ]] && store+=(--runroot "$BUILDAH_RUNROOT")
  # --layers reuses the steps whose inputs did not change (npm ci when the lockfile did not);
  # --network host: the build stage's npm ci reaches the registry as this machine does.
  buildah ${store[@]+"${store[@]}"} bud --quiet --layers --network host ${args[@]+"${args[@]}"} -t "$image" -f "$ROOT/Dockerfile" "$ROOT" >/dev/null
  if [[ -n "$archive" ]]; then
    rm -f "$archive"
    buildah ${store[@]+"${store[@]}"} push --quiet "$image" "docker-archive:$archive:$image" >/dev/null
  fi
fi
log "built $image with $builder in $(( $(date +%s) - start ))s${archive:+ (archive: $archive)}"
