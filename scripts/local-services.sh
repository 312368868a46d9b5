#!/usr/bin/env bash
# Start or stop the PostgreSQL and Redis servers the service tests run against, on loopback only.
#
#   scripts/local-services.sh start|stop|status
#
# Data lives under .local/ in the repository. Ports come from PG_PORT (default 5433) and
# REDIS_PORT (default 6390) so a developer's own servers on 5432/6379 are left alone.
# When run as root and a server is missing, it is installed from Debian packages.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.local"
PG_PORT=${PG_PORT:-5433}
REDIS_PORT=${REDIS_PORT:-6390}
PG_DATA="$STATE/pg/data"
PG_RUN="$STATE/pg/run"
PG_LOG="$STATE/pg/postgres.log"
REDIS_DIR="$STATE/redis"

pg_bindir() {
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir; return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && echo "$d"
}

ensure_installed() {
  local missing=()
  [ -n "$(pg_bindir)" ] || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "error: ${missing[*]} not installed; install them (e.g. apt-get install ${missing[*]}) and retry" >&2
    exit 1
  fi
}

# As root, PostgreSQL refuses to run: use the postgres system user and give it the data dir.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  local bin; bin=$(pg_bindir)
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    echo "postgresql already running on 127.0.0.1:$PG_PORT"; return
  fi
  mkdir -p "$PG_RUN"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$STATE/pg"; fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_RUN -c fsync=off -c max_connections=300" >/dev/null
  # The role the tests connect as; CREATEDB so tests can make throwaway databases.
  "$bin/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'agent') THEN
    CREATE ROLE agent LOGIN PASSWORD 'agent' CREATEDB;
  END IF;
END $$;
SQL
  if ! "$bin/psql" -tA -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = 'agent'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres -O agent agent
  fi
  echo "postgresql running on 127.0.0.1:$PG_PORT (user agent, database agent)"
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "redis already running on 127.0.0.1:$REDIS_PORT"; return
  fi
  mkdir -p "$REDIS_DIR"
  redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid"
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null
  echo "redis running on 127.0.0.1:$REDIS_PORT"
}

stop_all() {
  local bin; bin=$(pg_bindir || true)
  if [ -n "$bin" ] && [ -s "$PG_DATA/postmaster.pid" ]; then
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  echo "stopped"
}

case "${1:-}" in
  start) ensure_installed; start_pg; start_redis ;;
  stop) stop_all ;;
  status)
    "$(pg_bindir)/pg_isready" -h 127.0.0.1 -p "$PG_PORT" || true
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping || true ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
