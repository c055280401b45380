#!/usr/bin/env bash
# Throw-away PostgreSQL and Redis on loopback for the scale-out test pass, in a temporary directory.
#
#   eval "$(.ci/services.sh start)"   installs them from Debian's packages if missing, starts both,
#                                     prints the exports for GATEHOUSE_TEST_DATABASE_URL/_REDIS_URL
#   .ci/services.sh stop              stops both and removes the directory
#   .ci/services.sh env               prints the exports again (services already started)
#
# GATEHOUSE_SERVICES_DIR (default /tmp/gatehouse-services), GATEHOUSE_TEST_PG_PORT (55432) and
# GATEHOUSE_TEST_REDIS_PORT (56379) move them. The cluster is for tests only: fsync is off and
# authentication is `trust` on loopback.
set -euo pipefail

dir="${GATEHOUSE_SERVICES_DIR:-/tmp/gatehouse-services}"
pg_port="${GATEHOUSE_TEST_PG_PORT:-55432}"
redis_port="${GATEHOUSE_TEST_REDIS_PORT:-56379}"

say() { echo "services: $*" >&2; }

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

# PostgreSQL refuses to run as root: as root, its commands run as the postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_missing() {
  if [ -n "$(pg_bin)" ] && command -v redis-server >/dev/null; then return; fi
  if [ "$(id -u)" != 0 ]; then
    say "PostgreSQL or redis-server is missing; run: sudo apt-get install -y postgresql redis-server"
    exit 1
  fi
  say "installing postgresql and redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql redis-server >&2
}

print_env() {
  echo "export GATEHOUSE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:${pg_port}/postgres"
  echo "export GATEHOUSE_TEST_REDIS_URL=redis://127.0.0.1:${redis_port}"
}

start() {
  install_missing
  local bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  if [ ! -f "$dir/pg/PG_VERSION" ]; then
    mkdir -p "$dir/pg"
    if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$dir/pg"; fi
    # C collation: text sorts by bytes, exactly as the embedded SQLite store sorts it.
    as_pg "$bin/initdb" -D "$dir/pg" -A trust -U postgres --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if ! as_pg "$bin/pg_ctl" -D "$dir/pg" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w -o \
      "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >&2 || { cat "$dir/pg/server.log" >&2; exit 1; }
  fi
  say "PostgreSQL on 127.0.0.1:${pg_port} (data in $dir/pg)"
  if ! redis-cli -p "$redis_port" ping >/dev/null 2>&1; then
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >&2
    for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  say "Redis on 127.0.0.1:${redis_port}"
  print_env
}

stop() {
  local bin
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$dir/pg/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null; then redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
