#!/usr/bin/env bash
# This checkout's loopback PostgreSQL and Redis for the service tests.
#
#   scripts/local-services.sh start        start them (or find them running) and write .local/services.env
#   scripts/local-services.sh stop         stop them (never a server of another checkout)
#   scripts/local-services.sh status       say what runs where, and whose it is
#   scripts/local-services.sh run CMD...   start what is not running, run CMD with TEST_DATABASE_URL and
#                                          TEST_REDIS_URL pointing at them, stop what this call started
#
# Each checkout has its own servers, with their data under .local/ of the checkout. A server is this
# checkout's only if it says so itself: PostgreSQL's `data_directory` or Redis' `dir` is the one
# under .local/ here (the OWNER file next to them names the checkout). They listen on PG_PORT
# (default 5433) and REDIS_PORT (default 6390); when another checkout's server (or anything else)
# holds a port, the next free one is taken and said so. The ports in use go to .local/services.env,
# which the tests read (tests/conftest.py). When run as root and a server is missing, it is
# installed from Debian packages.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
STATE="$ROOT/.local"
ENV_FILE="$STATE/services.env"
WANT_PG_PORT=${PG_PORT:-5433}
WANT_REDIS_PORT=${REDIS_PORT:-6390}
PG_DIR="$STATE/pg"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"
PG_LOG="$PG_DIR/postgres.log"
REDIS_DIR="$STATE/redis"
PORT_TRIES=50  # ports tried above the wanted one before giving up

say() { echo "local-services: $*"; }
die() { echo "local-services: error: $*" >&2; exit 1; }

pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return 0
  fi
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' | sort -V | tail -n 1)
  [ -n "$d" ] && echo "$d"
}

ensure_installed() {
  local missing=()
  [ -n "$(pg_bindir)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "${missing[*]} not installed; install them (e.g. apt-get install ${missing[*]}) and retry"
  fi
}

# As root, PostgreSQL refuses to run: use the postgres system user and give it the data dir.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() {  # anything accepting TCP connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# What the server on a port says its data directory is (empty: no PostgreSQL of ours answers).
pg_data_dir_on() {
  "$BIN/psql" -X -tA -h 127.0.0.1 -p "$1" -U postgres -d postgres -c 'SHOW data_directory' \
    2>/dev/null || true
}

redis_dir_on() {
  redis-cli -h 127.0.0.1 -p "$1" --raw CONFIG GET dir 2>/dev/null | sed -n 2p || true
}

describe_holder() {  # describe_holder KIND PORT: whose server holds the port, for the message
  local dir
  if [ "$1" = postgresql ]; then dir=$(pg_data_dir_on "$2"); else dir=$(redis_dir_on "$2"); fi
  if [ -n "$dir" ] && [ -s "$(dirname "$dir")/OWNER" ]; then
    echo "the $1 of checkout $(cat "$(dirname "$dir")/OWNER") (data in $dir)"
  elif [ -n "$dir" ]; then
    echo "a $1 with its data in $dir"
  else
    echo "another process"
  fi
}

free_port() {  # free_port KIND WANTED: the wanted port, or the next one nothing listens on
  local port=$2 last=$(($2 + PORT_TRIES))
  while [ "$port" -le "$last" ]; do
    if ! port_in_use "$port"; then
      echo "$port"; return 0
    fi
    say "port $port is held by $(describe_holder "$1" "$port"): not using it" >&2
    port=$((port + 1))
  done
  die "no free port for $1 in $2..$last"
}

# --- PostgreSQL ------------------------------------------------------------------------------
pg_port_of_ours() {  # the port our PostgreSQL listens on, when it runs (from its postmaster.pid)
  local port
  [ -s "$PG_DATA/postmaster.pid" ] || return 1
  port=$(sed -n 4p "$PG_DATA/postmaster.pid")
  [ -n "$port" ] && [ "$(pg_data_dir_on "$port")" = "$PG_DATA" ] && echo "$port"
}

start_pg() {
  BIN=$(pg_bindir)
  if PG_PORT=$(pg_port_of_ours); then
    say "postgresql of this checkout already running on 127.0.0.1:$PG_PORT"
    return 0
  fi
  mkdir -p "$PG_RUN"
  echo "$ROOT" >"$PG_DIR/OWNER"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$PG_DIR"; fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  local attempt
  PG_PORT=$WANT_PG_PORT
  for attempt in 1 2 3 4 5; do
    PG_PORT=$(free_port postgresql "$PG_PORT")
    # A port taken between the check and the bind (another checkout starting too): try the next.
    if as_pg "$BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start -o "-p $PG_PORT \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_RUN -c fsync=off \
        -c max_connections=300" >/dev/null && [ "$(pg_data_dir_on "$PG_PORT")" = "$PG_DATA" ]; then
      STARTED_PG=1
      break
    fi
    as_pg "$BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    [ "$attempt" -lt 5 ] || die "postgresql did not start; see $PG_LOG"
    PG_PORT=$((PG_PORT + 1))
  done
  # The role the tests connect as; CREATEDB so tests can make throwaway databases.
  "$BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agent') THEN
    CREATE ROLE agent LOGIN PASSWORD 'agent' CREATEDB;
  END IF;
END $$;
SQL
  if ! "$BIN/psql" -X -tA -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = 'agent'" | grep -q 1; then
    "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres -O agent agent
  fi
  say "postgresql of this checkout running on 127.0.0.1:$PG_PORT (user agent, database agent)"
}

stop_pg() {
  local bin
  bin=$(pg_bindir || true)
  # pg_ctl -D stops the server of this data directory only, whatever port it listens on.
  if [ -n "$bin" ] && [ -s "$PG_DATA/postmaster.pid" ]; then
    if as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1; then
      say "postgresql of this checkout stopped"
    fi
  fi
}

# --- Redis -----------------------------------------------------------------------------------
redis_port_of_ours() {
  local port
  if [ -s "$REDIS_DIR/port" ]; then
    port=$(cat "$REDIS_DIR/port")
    # return 0, not a bare return: in the EXIT trap a bare return gives the status the command
    # exited with, and a failed test run would leave its Redis running.
    [ "$(redis_dir_on "$port")" = "$REDIS_DIR" ] && { echo "$port"; return 0; }
  fi
  # A server of this checkout started before the port was recorded (by hand, or an older
  # version of this script) still says it keeps its data here: adopt it.
  [ "$(redis_dir_on "$WANT_REDIS_PORT")" = "$REDIS_DIR" ] || return 1
  echo "$WANT_REDIS_PORT" >"$REDIS_DIR/port"
  echo "$WANT_REDIS_PORT"
}

start_redis() {
  if REDIS_PORT=$(redis_port_of_ours); then
    say "redis of this checkout already running on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  mkdir -p "$REDIS_DIR"
  echo "$ROOT" >"$STATE/OWNER"
  local attempt
  REDIS_PORT=$WANT_REDIS_PORT
  for attempt in 1 2 3 4 5; do
    REDIS_PORT=$(free_port redis "$REDIS_PORT")
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" \
      --pidfile "$REDIS_DIR/redis.pid"
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    # The server answering must be ours (a port taken in between answers with another dir).
    if [ "$(redis_dir_on "$REDIS_PORT")" = "$REDIS_DIR" ]; then
      echo "$REDIS_PORT" >"$REDIS_DIR/port"
      STARTED_REDIS=1
      say "redis of this checkout running on 127.0.0.1:$REDIS_PORT"
      return 0
    fi
    REDIS_PORT=$((REDIS_PORT + 1))
  done
  die "redis did not start; see $REDIS_DIR/redis.log"
}

stop_redis() {
  local port
  if port=$(redis_port_of_ours); then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    say "redis of this checkout stopped"
  fi
  rm -f "$REDIS_DIR/port"
}

# --- commands ---------------------------------------------------------------------------------
write_env() {
  cat >"$ENV_FILE.tmp" <<EOF
# This checkout's loopback servers (scripts/local-services.sh); the tests read this file.
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
TEST_DATABASE_URL=postgresql+asyncpg://agent:agent@127.0.0.1:$PG_PORT/agent
TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

STARTED_PG=0
STARTED_REDIS=0
start() {
  ensure_installed
  mkdir -p "$STATE"
  echo "$ROOT" >"$STATE/OWNER"
  start_pg
  start_redis
  write_env
}

stop_started() {  # what this invocation started, nothing else
  [ "$STARTED_PG" = 1 ] && stop_pg
  [ "$STARTED_REDIS" = 1 ] && stop_redis
  if [ "$STARTED_PG$STARTED_REDIS" = 11 ]; then rm -f "$ENV_FILE"; fi
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop_pg; stop_redis; rm -f "$ENV_FILE" ;;
  status)
    BIN=$(pg_bindir || true)
    if [ -n "$BIN" ] && port=$(pg_port_of_ours); then
      say "postgresql of this checkout on 127.0.0.1:$port"
    else
      say "postgresql of this checkout: not running"
    fi
    if port=$(redis_port_of_ours); then
      say "redis of this checkout on 127.0.0.1:$port"
    else
      say "redis of this checkout: not running"
    fi ;;
  run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
    trap stop_started EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start
    rc=0
    export PG_PORT REDIS_PORT
    export TEST_DATABASE_URL="postgresql+asyncpg://agent:agent@127.0.0.1:$PG_PORT/agent"
    export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    "$@" || rc=$?
    exit "$rc" ;;
  *) echo "usage: $0 start|stop|status|run CMD..." >&2; exit 2 ;;
esac
