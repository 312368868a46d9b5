#!/usr/bin/env bash
# A redeploy never collides with the image already in ECR: real builds, replayed on moto.
#
#   scripts/image-redeploy-check.sh        (make image-redeploy; root; CI runs it)
#
# Builds the service's source tree (service/, as Docker would send it) with buildah, several
# times, the way a redeploy meets it:
#   first    the tree, umask 022
#   revert   the same tree built again later (a revert, or a rebuild after the cache is gone)
#   machine  the same tree checked out with umask 077 (another machine), built with the same
#            fixed timestamp as `pinned`
#   pinned   the tree with a fixed timestamp, twice: a reproducible rebuild is the same image
# The Containerfile only copies the tree (no base image, no network): enough to show that one
# tree gives different images. Each image goes to an OCI layout, and `python -m
# tests.infra.ecr_push` pushes them in order where the rendered dev stack pushes (moto's ECR,
# immutable tags) and checks that the pods' reference of each pulls it.
#
# Needs root (buildah with vfs storage) and ./venv (`make setup`). Storage under .local/redeploy
# is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK="$ROOT/.local/redeploy"
BUILDAH=(buildah --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run")
PY="$ROOT/venv/bin/python"

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (buildah's vfs storage needs it)" >&2
  exit 1
fi
[ -x "$PY" ] || { echo "error: ./venv missing: run make setup" >&2; exit 1; }
if ! command -v buildah >/dev/null; then
  echo "== installing buildah"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi

cleanup() {
  "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$WORK/layouts"
printf 'FROM scratch\nCOPY . /app/\n' >"$WORK/Containerfile"

checkout() {  # checkout DIR UMASK: the build context as a clone made with that umask would have it
  (
    umask "$2"
    mkdir -p "$1"
    # The files Docker sends: .dockerignore'd caches and build output stay out.
    tar -C service --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
      --no-same-permissions -cf - . | tar -C "$1" --no-same-permissions -xf -
  )
}

build() {  # build NAME CONTEXT [buildah bud options...]
  local name=$1 context=$2
  shift 2
  "${BUILDAH[@]}" bud --quiet --isolation chroot "$@" -f "$WORK/Containerfile" \
    -t "localhost/redeploy:$name" "$context" >/dev/null
  "${BUILDAH[@]}" push --quiet "localhost/redeploy:$name" "oci:$WORK/layouts/$name" >/dev/null
  echo "built $name: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
    "$WORK/layouts/$name/index.json")"
}

echo "== builds of one source tree"
checkout "$WORK/tree-022" 022
checkout "$WORK/tree-077" 077
build first "$WORK/tree-022"
sleep 1  # the revert comes later: the image records its creation time
build revert "$WORK/tree-022"
build pinned "$WORK/tree-022" --timestamp 0
build pinned-again "$WORK/tree-022" --timestamp 0
build machine "$WORK/tree-077" --timestamp 0

digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$WORK/layouts/$1/index.json"; }
[ "$(digest first)" != "$(digest revert)" ] || { echo "FAILED: a later build was the same image" >&2; exit 1; }
[ "$(digest pinned)" != "$(digest machine)" ] || { echo "FAILED: another umask gave the same image" >&2; exit 1; }
[ "$(digest pinned)" = "$(digest pinned-again)" ] || { echo "FAILED: pinned builds differ" >&2; exit 1; }
echo "one tree, $(for n in first revert pinned machine; do digest "$n"; done | sort -u | wc -l) different images"

echo
echo "== pushed in order where the dev stack pushes (moto ECR, immutable tags)"
"$PY" -m tests.infra.ecr_push --stack dev \
  "$WORK/layouts/first" "$WORK/layouts/revert" "$WORK/layouts/machine" \
  "$WORK/layouts/pinned" "$WORK/layouts/pinned-again"
echo
echo "image redeploy check passed"
