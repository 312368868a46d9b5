#!/usr/bin/env bash
# Build the service image without a container engine and check it runs.
#
#   scripts/container-smoke.sh
#
# 1. A base image from Debian packages: debootstrap a minimal bookworm with python3 and
#    python3-venv (cached as a tarball under .local/container/), imported with buildah.
# 2. `buildah --storage-driver vfs bud --isolation chroot --build-arg BASE_IMAGE=<that base>`
#    of service/ (the Dockerfile's own pip step reaches PyPI).
# 3. Run the image's own CMD as the image's own non-root user with `buildah run` (chroot
#    isolation, host network), then check /health and a session round trip with curl.
#
# Needs root (debootstrap, buildah with vfs). Storage lives in .local/container/storage and is
# removed at the end; the base tarball stays cached. Set KEEP_IMAGE=1 to keep the built image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK="$ROOT/.local/container"
BASE_TAR="$WORK/base-bookworm-python3.tar"
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/agent-base:bookworm
IMAGE=localhost/agent-service:smoke
PORT=${SMOKE_PORT:-18080}
KEY=smoke-key
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
# Global options go before the subcommand: `bud --storage-driver vfs` would open another store.
BUILDAH=(buildah --storage-driver vfs --root "$WORK/storage" --runroot "$WORK/run")

step() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (debootstrap and buildah's vfs storage need it)" >&2
  exit 1
fi

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$WORK"
T0=$(date +%s)
CTR=""
RUN_PID=""
cleanup() {
  set +e
  if [ -n "$RUN_PID" ]; then
    kill -TERM "$RUN_PID" 2>/dev/null
    pkill -TERM -P "$RUN_PID" 2>/dev/null
    wait "$RUN_PID" 2>/dev/null
  fi
  [ -n "$CTR" ] && "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1
  if [ "${KEEP_IMAGE:-0}" != 1 ]; then
    "${BUILDAH[@]}" rm --all >/dev/null 2>&1
    "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1
    rm -rf "$WORK/storage" "$WORK/run"
  fi
}
trap cleanup EXIT

step "base image from Debian packages ($SUITE, python3, python3-venv)"
t=$(date +%s)
if [ ! -s "$BASE_TAR" ]; then
  rootfs=$(mktemp -d "$WORK/rootfs.XXXXXX")
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Package caches and lists are not part of an image.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$BASE_TAR.tmp" .
  mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$rootfs"
  echo "debootstrapped and cached $(du -h "$BASE_TAR" | cut -f1) in $(elapsed "$t")"
else
  echo "cached rootfs: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
fi
base=$("${BUILDAH[@]}" from scratch)
"${BUILDAH[@]}" add --quiet "$base" "$BASE_TAR" / >/dev/null
"${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --cmd '["/bin/bash"]' "$base"
# Where PyPI is reached through a TLS-inspecting egress proxy, the host trusts its CA (pip is
# pointed at the bundle with PIP_CERT): let this stand-in base trust the same bundle, so the
# Dockerfile's pip step works unchanged. The official python image needs nothing of the sort.
if [ -n "${PIP_CERT:-}" ] && [ -s "$PIP_CERT" ]; then
  "${BUILDAH[@]}" copy --quiet "$base" "$PIP_CERT" /etc/ssl/certs/ca-certificates.crt >/dev/null
  "${BUILDAH[@]}" config --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$base"
  echo "base trusts the host's CA bundle ($PIP_CERT)"
fi
"${BUILDAH[@]}" commit --quiet --rm "$base" "$BASE_IMAGE" >/dev/null
echo "imported $BASE_IMAGE in $(elapsed "$t")"

step "build service/ (buildah bud, chroot isolation, vfs)"
t=$(date +%s)
"${BUILDAH[@]}" bud --quiet --pull=never --isolation chroot \
  --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$IMAGE" service/ >/dev/null
echo "built $IMAGE in $(elapsed "$t")"
config=$("${BUILDAH[@]}" inspect --type image "$IMAGE")
user=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["OCIv1"]["config"]["User"])' <<<"$config")
cmd=$(python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["OCIv1"]["config"]["Cmd"]))' <<<"$config")
echo "image user: $user   cmd: $cmd"
[ "${user%%:*}" = 10001 ] || { echo "error: image user is '$user', expected 10001" >&2; exit 1; }

step "run the image's CMD (python -m agent_service) on 127.0.0.1:$PORT"
CTR=$("${BUILDAH[@]}" from "$IMAGE")
mapfile -t argv < <(python3 -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$cmd")
"${BUILDAH[@]}" run --isolation chroot --network host \
  -e PORT="$PORT" -e API_KEYS="$KEY" -e HOSTNAME=smoke -e SHUTDOWN_DRAIN_SECONDS=0 \
  "$CTR" -- "${argv[@]}" >"$WORK/run.log" 2>&1 &
RUN_PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  kill -0 "$RUN_PID" 2>/dev/null || { cat "$WORK/run.log" >&2; exit 1; }
  sleep 0.2
done

fail() { echo "FAILED: $*" >&2; tail -n 20 "$WORK/run.log" >&2; exit 1; }
H=(-H "Authorization: Bearer $KEY" -H "Content-Type: application/json")
check() {  # check NAME EXPECTED_STATUS curl-args...
  local name=$1 want=$2; shift 2
  local out code
  out=$(curl -sS -w '\n%{http_code}' "$@") || fail "$name: curl failed"
  code=${out##*$'\n'}
  body=${out%$'\n'*}
  printf '%-34s %s %s\n' "$name" "$code" "$body"
  [ "$code" = "$want" ] || fail "$name: HTTP $code, expected $want"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$body" "$1"; }

step "checks against the running image"
check "GET /health" 200 "$URL/health"
check "GET /ready" 200 "$URL/ready"
check "POST /v1/sessions (no key)" 401 -X POST "$URL/v1/sessions"
check "POST /v1/sessions" 201 -X POST "${H[@]}" "$URL/v1/sessions" -d '{"user_id":"smoke"}'
sid=$(field id)
check "POST /v1/sessions/{id}/messages" 200 -X POST "${H[@]}" "$URL/v1/sessions/$sid/messages" \
  -d '{"content":"hello from the smoke test"}'
check "GET /v1/sessions/{id}/messages" 200 "${H[@]}" "$URL/v1/sessions/$sid/messages"
[ "$(python3 -c 'import json,sys; print(len(json.loads(sys.argv[1])["items"]))' "$body")" = 2 ] \
  || fail "history should hold 2 messages"
check "DELETE /v1/sessions/{id}" 200 -X DELETE "${H[@]}" "$URL/v1/sessions/$sid"
[ "$(field message_count)" = 2 ] || fail "message_count should be 2"
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
svc=""
for pid in $(descendants "$RUN_PID"); do
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '-m agent_service'; then
    svc=$pid
  fi
done
[ -n "$svc" ] || fail "service process not found"
uid=$(ps -o uid= -p "$svc" | tr -d ' ')
echo "service process uid: $uid"
[ "$uid" = 10001 ] || fail "the service ran as uid $uid, expected 10001"

step "graceful stop (SIGTERM to the service)"
kill -TERM "$svc"
for _ in $(seq 1 100); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RUN_PID" 2>/dev/null && fail "the service did not stop within 10s of SIGTERM"
wait "$RUN_PID" || true  # uvicorn re-raises SIGTERM after its clean shutdown
RUN_PID=""
grep -o '"msg":"[^"]*shutdown[^"]*"\|"msg":"agent service stopped"' "$WORK/run.log" | tail -n 3
grep -q '"msg":"agent service stopped"' "$WORK/run.log" || fail "no clean shutdown after SIGTERM"
echo "stopped cleanly: requests finished, pools closed"

step "the image's other two commands"
out=$("${BUILDAH[@]}" run --isolation chroot --network host -e HOSTNAME=smoke "$CTR" -- \
  python -m agent_service.migrate 2>&1) || fail "python -m agent_service.migrate: $out"
echo "python -m agent_service.migrate   -> ${out##*$'\n'}"
rc=0
out=$("${BUILDAH[@]}" run --isolation chroot --network host "$CTR" -- \
  python -m agent_service.worker 2>&1) || rc=$?
echo "python -m agent_service.worker    -> exit $rc without REDIS_URL: $(grep -m1 REDIS_URL <<<"$out")"
case "$out" in *"REDIS_URL: required by the worker"*) ;; *) fail "worker: $out" ;; esac

step "the RDS CA bundle DB_SSLROOTCERT points at, loaded as the image's user"
out=$("${BUILDAH[@]}" run --isolation chroot "$CTR" -- python -c \
  'import os, ssl; c = ssl.create_default_context(cafile="/app/certs/rds-global-bundle.pem"); print(os.getuid(), len(c.get_ca_certs()))' 2>&1) \
  || fail "loading /app/certs/rds-global-bundle.pem: $out"
echo "uid and CAs loaded: $out"
[ "$out" = "10001 109" ] || fail "expected uid 10001 to load 109 CAs, got: $out"

echo
echo "container smoke test passed in $(elapsed "$T0")"
