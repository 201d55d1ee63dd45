#!/usr/bin/env bash
# dev.sh: bring Bookstore up on this machine, run its tests, take it down.
#
#   ./dev.sh up       install build dependencies if missing, build, start a private
#                     PostgreSQL and Redis on loopback, create books_db/books_user
#                     and orders_db/orders_user, start bookstore-books,
#                     bookstore-orders (each migrates its database) and
#                     bookstore-worker, print URLs
#   ./dev.sh test     build (with -Werror) and run every test: unit, lint, unit files,
#                     integration, and the packages on a booted Debian 12
#   ./dev.sh down     stop what `up` started
#   ./dev.sh status   show what is running
#   ./dev.sh deps     only install the Debian packages the project needs
#
# Environment: BOOKSTORE_STATE_DIR (default ./.state), BOOKSTORE_PG_PORT (55432),
# BOOKSTORE_REDIS_PORT (56379), BOOKSTORE_BUILD_DIR (build), PORT for books (8001),
# BOOKSTORE_ORDERS_PORT (8082), BOOKSTORE_WORKER_PORT (9100).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${BOOKSTORE_STATE_DIR:-$ROOT/.state}
BUILD=${BOOKSTORE_BUILD_DIR:-$ROOT/build}
PG_PORT=${BOOKSTORE_PG_PORT:-55432}
BOOKS_PORT=${PORT:-8001}
ORDERS_PORT=${BOOKSTORE_ORDERS_PORT:-8082}
WORKER_PORT=${BOOKSTORE_WORKER_PORT:-9100}
REDIS_PORT=${BOOKSTORE_REDIS_PORT:-56379}
PG_BIN=/usr/lib/postgresql/15/bin

DEB_PACKAGES=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libglib2.0-dev libglib2.0-bin libsoup-3.0-dev libjson-glib-dev libpq-dev libsystemd-dev
  libhiredis-dev
  postgresql postgresql-contrib redis-server
  python3 python3-pytest python3-pytest-xdist python3-requests python3-redis python3-yaml
  python3-prometheus-client
  prometheus wrk curl valgrind shellcheck codespell clang-format nodejs npm haproxy stunnel4
  debhelper dpkg-dev fakeroot lintian debootstrap systemd-container
  chromium chromium-driver python3-selenium
)

say() { printf '==> %s\n' "$*"; }
die() { printf 'dev.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

cmd_deps() {
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # node/npm may come from outside Debian's packages: fine if the commands exist
  if command -v node >/dev/null && command -v npm >/dev/null; then
    local filtered=()
    for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
    missing=("${filtered[@]}")
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

cmd_build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" -Dwerror=true
  fi
  ninja -C "$BUILD"
}

# PostgreSQL refuses to run as root: run it as the postgres user then.
pg_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_busy() { # true when something listens on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_start() {
  local data=$STATE/pg/data
  mkdir -p "$STATE/pg"
  [ "$(id -u)" -eq 0 ] && chown "$(pg_user)" "$STATE/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $data"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 >/dev/null
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    port_busy "$PG_PORT" && die "port $PG_PORT is taken by another program; choose one with BOOKSTORE_PG_PORT=..."
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$STATE/pg/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $STATE/pg" start >/dev/null; then
      tail -n 20 "$STATE/pg/server.log" >&2
      die "PostgreSQL did not start (log: $STATE/pg/server.log)"
    fi
  fi
  # the seed's database and role; idempotent
  as_pg psql -h "$STATE/pg" -p "$PG_PORT" -U postgres -qAt -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
SELECT 'CREATE ROLE books_user LOGIN PASSWORD ''books_password'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'books_user') \gexec
SELECT 'CREATE DATABASE books_db OWNER books_user'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'books_db') \gexec
SELECT 'CREATE ROLE orders_user LOGIN PASSWORD ''orders_password'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orders_user') \gexec
SELECT 'CREATE DATABASE orders_db OWNER orders_user'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'orders_db') \gexec
SQL
}

pg_stop() {
  local data=$STATE/pg/data
  [ -f "$data/PG_VERSION" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1 || return 0
  say "stopping PostgreSQL"
  as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
}

redis_start() {
  mkdir -p "$STATE/redis"
  if [ -f "$STATE/redis/redis.pid" ] && kill -0 "$(cat "$STATE/redis/redis.pid")" 2>/dev/null; then
    return 0
  fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is taken by another program; choose one with BOOKSTORE_REDIS_PORT=..."
  say "starting Redis on 127.0.0.1:$REDIS_PORT"
  # append-only file in the state dir: queued jobs survive ./dev.sh down/up
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" --appendonly yes \
    --save '' --daemonize yes --pidfile "$STATE/redis/redis.pid" \
    --logfile "$STATE/redis/redis.log" >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 "$STATE/redis/redis.log" >&2
  die "Redis did not start (log: $STATE/redis/redis.log)"
}

redis_stop() {
  local pidfile=$STATE/redis/redis.pid
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || return 0
  say "stopping Redis"
  redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 1 50); do [ -f "$pidfile" ] || break; sleep 0.1; done
}

service_start() { # name binary port port-variable env...
  local name=$1 binary=$2 port=$3 port_var=$4; shift 4
  local pidfile=$STATE/$name.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    say "$name already running (pid $(cat "$pidfile"))"
    return 0
  fi
  port_busy "$port" && die "port $port is taken by another program"
  say "starting $name on port $port (log: $STATE/$name.log)"
  # G_SLICE as the units set it (docs/http-edge.md); no tokens from the
  # caller's environment: the dev stack keeps the seed's open workflow
  env -u API_TOKENS_FILE -u ORDERS_API_TOKEN_FILE -u CREDENTIALS_DIRECTORY \
    G_SLICE=always-malloc "$@" "$port_var=$port" setsid "$binary" >>"$STATE/$name.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
      return 0
    fi
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { tail -n 20 "$STATE/$name.log" >&2; die "$name exited"; }
    sleep 0.2
  done
  tail -n 20 "$STATE/$name.log" >&2
  die "$name did not become healthy on port $port"
}

service_stop() {
  local pidfile=$STATE/$1.pid
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $1"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

cmd_up() {
  cmd_deps
  cmd_build
  mkdir -p "$STATE"
  pg_start
  redis_start
  service_start bookstore-books "$BUILD/books/bookstore-books" "$BOOKS_PORT" PORT \
    BOOKS_DB_DSN="postgresql://books_user:books_password@127.0.0.1:$PG_PORT/books_db" \
    BIND_ADDRESS=127.0.0.1 DOCS_ASSETS_DIR="$BUILD/data/swagger-ui"
  service_start bookstore-orders "$BUILD/orders/bookstore-orders" "$ORDERS_PORT" PORT \
    DATABASE_URL="postgresql://orders_user:orders_password@127.0.0.1:$PG_PORT/orders_db" \
    BOOKS_SERVICE_URL="http://127.0.0.1:$BOOKS_PORT" \
    REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT" BIND_ADDRESS=127.0.0.1 \
    DOCS_ASSETS_DIR="$BUILD/data/swagger-ui"
  service_start bookstore-worker "$BUILD/workers/bookstore-worker" "$WORKER_PORT" \
    WORKER_METRICS_PORT REDIS_HOST=127.0.0.1 REDIS_PORT="$REDIS_PORT" \
    ORDERS_API_URL="http://127.0.0.1:$ORDERS_PORT" BIND_ADDRESS=127.0.0.1
  echo
  echo "Bookstore is up:"
  echo "  Books API   http://127.0.0.1:$BOOKS_PORT/v1/books"
  echo "  Orders API  http://127.0.0.1:$ORDERS_PORT/v1/orders"
  echo "  explorers   http://127.0.0.1:$BOOKS_PORT/docs  http://127.0.0.1:$ORDERS_PORT/docs   (Swagger UI)"
  echo "  health      http://127.0.0.1:$BOOKS_PORT/health  http://127.0.0.1:$ORDERS_PORT/health  http://127.0.0.1:$WORKER_PORT/health"
  echo "  metrics     http://127.0.0.1:$BOOKS_PORT/metrics  http://127.0.0.1:$ORDERS_PORT/metrics  http://127.0.0.1:$WORKER_PORT/metrics"
  echo "  Redis       redis-cli -p $REDIS_PORT   (streams: bookstore:orders:events, ...)"
  echo "  enqueue     REDIS_PORT=$REDIS_PORT $BUILD/workers/bookstore-enqueue --book-id 1 --quantity 1 --wait 10"
  echo "  writes      open: no API_TOKENS_FILE, so no request needs a token (docs/configuration.md, 'Bearer tokens')"
  echo "  logs        $STATE/bookstore-books.log  $STATE/bookstore-orders.log  $STATE/bookstore-worker.log"
  echo "Stop it with: ./dev.sh down"
}

cmd_down() {
  service_stop bookstore-worker
  service_stop bookstore-orders
  service_stop bookstore-books
  redis_stop
  pg_stop
}

cmd_status() {
  for name in bookstore-books bookstore-orders bookstore-worker; do
    if [ -f "$STATE/$name.pid" ] && kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$STATE/$name.pid"))"
    else
      echo "$name: stopped"
    fi
  done
  as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg/data" status 2>/dev/null | head -1 || echo "postgresql: stopped"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "redis: running on 127.0.0.1:$REDIS_PORT"
  else
    echo "redis: stopped"
  fi
}

cmd_test() {
  cmd_deps
  cmd_build
  say "unit tests"
  meson test -C "$BUILD" --print-errorlogs --suite unit
  say "OpenAPI lint"
  "$ROOT/tests/openapi/lint.sh"
  say "systemd units (verify, security exposure <= 1.0)"
  "$ROOT/tests/systemd/check-units.sh" "$BUILD"
  say "integration tests"
  cd "$ROOT"
  # two pytest processes, each taking whole files (the suites mostly wait for
  # daemons, restarts and timeouts): 1.4-1.5x faster on 2 CPUs, same tests
  BOOKSTORE_BUILD_DIR=$BUILD /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -n "${BOOKSTORE_TEST_JOBS:-2}" --dist loadfile tests/integration
  say "monitoring: promtool, rule tests, dashboards, Prometheus against the stack"
  BOOKSTORE_BUILD_DIR=$BUILD "$ROOT/tests/monitoring/run.sh"
  say "Debian packages on a booted Debian 12 (systemd-nspawn)"
  as_root "$ROOT/tests/system/run.sh"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  test) cmd_test ;;
  deps) cmd_deps ;;
  build) cmd_deps; cmd_build ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
