#!/bin/bash
# bookstore-books and bookstore-orders side by side with peers written the way
# their own users write them, on the same machine in one run (issue 11).
#
#   bench/peers.sh            check the answers, then benchmark
#   bench/peers.sh --check    only check the answers (about a minute)
#
# The systems (bench/peers/, docs/performance.md, "Peers"):
#   books        our bookstore-books (BOOKS_DB_POOL_SIZE=POOL_SIZE), one event
#                loop per CPU (the default)
#   books-1      the same with BOOKS_THREADS=1: one event loop
#   fastapi-1/2  FastAPI + asyncpg on uvicorn (uvloop, httptools), 1 or 2 workers
#   fastify-1/2  fastify 5 + postgres.js, 1 process or a node:cluster of 2
#   gin          Gin + pgx v4 (pgxpool)
#   floor        a bare libsoup-3 server answering a constant body: a book as
#                books answers it (no database)
#   pgbench      the same prepared SELECT (bench/select.sql), 64 clients: for scale
#   orders       our bookstore-orders; gin-orders: Gin + pgx v4 with its semantics;
#                both fetch the book from our books
# Every peer has a pool of POOL_SIZE connections per process (so twice that
# for fastapi-2 and fastify-2).
#
# It starts a throwaway PostgreSQL on a free loopback port, our daemons and
# every peer on free loopback ports, loads 10,000 books (bench/lib.sh) and a
# few more with unusual text, and checks that every peer answers
# GET /v1/books/{id} like books: the same status, media type and body, byte
# for byte, for ids that exist (NULL and empty descriptions, Unicode, quotes,
# escapes, control characters of older rows, extreme prices and timestamps),
# one deleted (410), missing ones (404) and malformed ones (400); and that
# gin-orders answers POST /v1/orders like orders (the same bytes once the
# order's id and created_at are set aside), with Idempotency-Key replays and
# conflicts, an unknown book and a deleted one. Any difference fails the run.
#
# Then ROUNDS rounds, interleaved (each system once per round, in turn, after
# one warm-up each): wrk -t2 -c64 -d${DURATION}s --latency against each
# (GET /v1/books/{random 1..10000}, bench/random-id.lua; POST /v1/orders with
# random books 1..100, bench/create-order.lua), and prints medians: req/s,
# p50, p99, RSS (the sum of VmRSS over the system's processes after the run),
# and the CPU its own processes (the whole process tree, user + system, from
# /proc) and PostgreSQL spent per request. The table goes to
# bench/results/peers-latest.txt, every run's numbers and the tools' output
# to bench/results/peers-latest-raw.txt.
#
# Environment:
#   DURATION             seconds of each measurement (default 10)
#   ROUNDS               rounds (default 3)
#   WARMUP               seconds of unmeasured load per system first (default 3)
#   POOL_SIZE            database connections per process (default 16)
#   SYSTEMS              GET systems, in order (default "books books-1 fastapi-1
#                        fastapi-2 fastify-1 fastify-2 gin floor pgbench")
#   ORDERS_SYSTEMS       POST /v1/orders systems (default "orders gin-orders";
#                        empty: none)
#   BOOKSTORE_BUILD_DIR  meson build directory (default: build/ in the repo)
#   BENCH_CACHE_DIR      where node_modules (npm ci of bench/peers/fastify's
#                        lock file) and Go's build cache go (default
#                        ${XDG_CACHE_HOME:-~/.cache}/bookstore-bench)
#   PG_BINDIR            PostgreSQL server binaries (default: newest
#                        /usr/lib/postgresql/*/bin)
# Missing Debian packages are installed when run as root (python3-fastapi,
# python3-uvicorn, python3-asyncpg, python3-uvloop, python3-httptools,
# golang-go, golang-github-gin-gonic-gin-dev, golang-github-jackc-pgx-v4-dev,
# nodejs, npm, libsoup-3.0-dev, wrk, postgresql-contrib). Nothing is built or
# installed into the repository.
#
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero when
# the check fails or something else did (a non-2xx answer or socket error
# under load, a process that did not start or died).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# PostgreSQL must hold every pool at once, and pgbench's 64 clients
# shellcheck disable=SC2034 # read by pg_start in lib.sh
pg_max_connections=400
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"

mode=bench
case ${1:-} in
  "") ;;
  --check) mode=check ;;
  -h | --help)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
    ;;
  *) die "usage: bench/peers.sh [--check]" ;;
esac
(($# <= 1)) || die "usage: bench/peers.sh [--check]"

duration=${DURATION:-10}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-3}
pool_size=${POOL_SIZE:-16}
read -r -a systems <<<"${SYSTEMS-books books-1 fastapi-1 fastapi-2 fastify-1 fastify-2 gin floor pgbench}"
read -r -a orders_systems <<<"${ORDERS_SYSTEMS-orders gin-orders}"
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
cache_dir=${BENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bookstore-bench}
peers=$here/peers
results_dir=$here/results
books_db=bookstore_books
connections=64
threads=2
books=10000
python=/usr/bin/python3 # Debian's, which sees the python3-* packages

[[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$duration'"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be an integer, not '$warmup'"
if [[ ! $pool_size =~ ^[1-9][0-9]*$ ]] || ((pool_size > 64)); then
  die "POOL_SIZE must be 1..64, not '$pool_size'"
fi
for s in "${systems[@]}"; do
  case $s in
    books | books-1 | fastapi-1 | fastapi-2 | fastify-1 | fastify-2 | gin | floor | pgbench) ;;
    *) die "SYSTEMS: unknown system '$s'" ;;
  esac
done
for s in "${orders_systems[@]}"; do
  [[ $s == orders || $s =~ ^orders-c[1-9][0-9]*$ || $s == gin-orders ]] \
    || die "ORDERS_SYSTEMS: unknown system '$s'"
done
# The check compares with books and orders: they always run. The floor and
# pgbench have nothing to check.
get_systems=(books)
for s in "${systems[@]}"; do
  [[ $s == books || $s == pgbench || ($mode == check && $s == floor) ]] || get_systems+=("$s")
done
if ((${#orders_systems[@]} > 0)) && [[ " ${orders_systems[*]} " != *" orders "* ]]; then
  orders_systems=(orders "${orders_systems[@]}")
fi
wants() { [[ " ${get_systems[*]} ${orders_systems[*]} " == *" $1"* ]]; }

[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
books_bin=$build_dir/books/bookstore-books
orders_bin=$build_dir/orders/bookstore-orders
for bin in "$books_bin" "$orders_bin"; do
  [[ -x $bin ]] || die "$bin not found: build first (meson setup build && ninja -C build)"
done

bench_find_pg_bindir

# ---- tools -------------------------------------------------------------------
missing=()
command -v curl >/dev/null || missing+=(curl)
if [[ $mode == bench ]]; then
  command -v wrk >/dev/null || missing+=(wrk)
  [[ -x $PG_BINDIR/pgbench ]] || command -v pgbench >/dev/null || missing+=(postgresql-contrib)
fi
if wants fastapi; then
  for module in fastapi uvicorn asyncpg uvloop httptools; do
    [[ -x $python ]] && "$python" -c "import $module" 2>/dev/null || missing+=("python3-$module")
  done
fi
if wants fastify; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi
if wants gin; then
  command -v go >/dev/null || missing+=(golang-go)
  [[ -d /usr/share/gocode/src/github.com/gin-gonic/gin ]] || missing+=(golang-github-gin-gonic-gin-dev)
  [[ -d /usr/share/gocode/src/github.com/jackc/pgx/v4 ]] || missing+=(golang-github-jackc-pgx-v4-dev)
fi
if wants floor; then
  command -v gcc >/dev/null || missing+=(gcc)
  pkg-config --exists libsoup-3.0 2>/dev/null || missing+=(pkg-config libsoup-3.0-dev)
fi
bench_install "${missing[@]}"
pgbench=$PG_BINDIR/pgbench
[[ -x $pgbench ]] || pgbench=$(command -v pgbench || echo pgbench)

# ---- fastify: npm ci into the cache, keyed by the lock file ----------------------
if wants fastify; then
  lock_sum=$(sha256sum "$peers/fastify/package-lock.json" | cut -c1-16)
  modules_dir=$cache_dir/fastify-$lock_sum
  if [[ ! -f $modules_dir/installed ]]; then
    log "npm ci of bench/peers/fastify/package-lock.json into $modules_dir"
    mkdir -p "$cache_dir"
    staging=$(mktemp -d "$cache_dir/staging.XXXXXX")
    cp "$peers/fastify/package.json" "$peers/fastify/package-lock.json" "$staging/"
    if ! (cd "$staging" && npm ci --omit=dev --no-audit --no-fund >npm.log 2>&1); then
      cat "$staging/npm.log" >&2
      rm -rf "$staging"
      die "npm ci failed"
    fi
    touch "$staging/installed"
    rm -rf "$modules_dir"
    mv "$staging" "$modules_dir"
  fi
  node_path=$modules_dir/node_modules
fi

# ---- cleanup of everything started: see lib.sh ---------------------------------
bench_init peers

# ---- builds, into $tmp/bin -----------------------------------------------------------
mkdir -p "$tmp/bin"
if wants gin; then
  log "go build (GOPATH mode, Debian's gin and pgx v4) into $tmp/bin"
  mkdir -p "$cache_dir"
  for program in books orders; do
    GO111MODULE=off GOPATH="$peers/gin:/usr/share/gocode" GOCACHE="$cache_dir/go-build" \
      GOFLAGS="" go build -o "$tmp/bin/gin-$program" "bookstore-peers/$program" \
      || die "go build of bookstore-peers/$program failed"
  done
fi
if wants floor; then
  # shellcheck disable=SC2046 # pkg-config's flags are words
  gcc -O2 -g -o "$tmp/bin/libsoup-floor" "$peers/libsoup-floor.c" \
    $(pkg-config --cflags --libs libsoup-3.0) || die "gcc of libsoup-floor.c failed"
fi

# ---- PostgreSQL --------------------------------------------------------------
pg_start
sql postgres "CREATE DATABASE $books_db" >/dev/null
for s in "${orders_systems[@]}"; do
  sql postgres "CREATE DATABASE ${s//-/_}" >/dev/null
done
dsn() { echo "postgresql://postgres@127.0.0.1:$pg_port/$1"; }
log "PostgreSQL: listening on 127.0.0.1:$pg_port (max_connections $pg_max_connections)"

# ---- the systems -------------------------------------------------------------------
declare -A pid_of base_of
start_system() {
  local name=$1 books_dsn
  books_dsn=$(dsn "$books_db")
  case $name in
    books)
      bench_start_daemon "$name" "$tmp/$name.log" "$books_bin" \
        BOOKS_DB_DSN="$books_dsn" BOOKS_DB_POOL_SIZE="$pool_size"
      ;;
    books-1)
      bench_start_daemon "$name" "$tmp/$name.log" "$books_bin" \
        BOOKS_DB_DSN="$books_dsn" BOOKS_DB_POOL_SIZE="$pool_size" BOOKS_THREADS=1
      ;;
    fastapi-1 | fastapi-2)
      bench_start_daemon "$name" "$tmp/$name.log" "$peers/fastapi/books.py" \
        DATABASE_URL="$books_dsn" POOL_SIZE="$pool_size" WORKERS="${name#fastapi-}"
      ;;
    fastify-1 | fastify-2)
      bench_start_daemon "$name" "$tmp/$name.log" "$peers/fastify/server.js" \
        NODE_PATH="$node_path" NODE_ENV=production DATABASE_URL="$books_dsn" \
        POOL_SIZE="$pool_size" WORKERS="${name#fastify-}"
      ;;
    gin)
      bench_start_daemon "$name" "$tmp/$name.log" "$tmp/bin/gin-books" \
        DATABASE_URL="$books_dsn" POOL_SIZE="$pool_size"
      ;;
    floor)
      curl -sf -o "$tmp/floor-body.json" "${base_of[books]}/v1/books/5000" \
        || die "GET /v1/books/5000 for the floor's body failed"
      bench_start_daemon "$name" "$tmp/$name.log" "$tmp/bin/libsoup-floor" \
        FLOOR_BODY_FILE="$tmp/floor-body.json"
      ;;
    orders | orders-c*)
      # orders-cN: ours with BOOKS_MAX_CONNECTIONS=N
      local conns=()
      [[ $name == orders-c* ]] && conns=(BOOKS_MAX_CONNECTIONS="${name#orders-c}")
      bench_start_daemon "$name" "$tmp/$name.log" "$orders_bin" \
        DATABASE_URL="$(dsn "${name//-/_}")" ORDERS_DB_POOL_SIZE="$pool_size" \
        BOOKS_SERVICE_URL="${base_of[books]}" "${conns[@]}"
      ;;
    gin-orders)
      local file
      for file in "$root"/data/sql/orders/[0-9]*.sql; do
        "$psql" -X -q -v ON_ERROR_STOP=1 -1 -h 127.0.0.1 -p "$pg_port" -U postgres \
          -d gin_orders -f "$file" >/dev/null || die "$file failed on gin_orders"
      done
      bench_start_daemon "$name" "$tmp/$name.log" "$tmp/bin/gin-orders" \
        DATABASE_URL="$(dsn gin_orders)" POOL_SIZE="$pool_size" \
        BOOKS_SERVICE_URL="${base_of[books]}"
      ;;
  esac
  pid_of[$name]=$started_pid
  base_of[$name]=http://127.0.0.1:$started_port
  log "$name: pid $started_pid on ${base_of[$name]}"
}

start_system books
bench_load_books "${base_of[books]}" "$books_db" "$books"

# Books with unusual text and values, after the ids wrk asks for. Those Books
# would refuse today (control characters) stand for rows written before it
# did: Books still answers them, so the peers must too.
# shellcheck disable=SC1003,SC1111 # backslashes and typographic quotes inside SQL literals
special_ids=$(sql "$books_db" "
  INSERT INTO books (title, author, description, price, created_at, updated_at, active)
  VALUES
   ('Le Petit Prince — «édition» 中文 😀 Ünïcödé', 'Antoine de Saint-Exupéry',
    'Ω≈ç√∫ ½ … ‘single’ “double” • 日本語 ﬁ', 7.5, now(), now(), true),
   (E'\"Quoted\" \\\\ back\\\\slash / <b>bold</b> & amp; \\\\u2028 \\\\n',
    E'Tab\there\u2028line sep', E'line 1\nline 2\r\nend\u2028sep\u2029para \u00ad soft', 0,
    now(), now(), true),
   (E'\x01\x08\x0c\x1b\x1f\x7f legacy', E'Old\x7fAuthor', E'bell\x07 C1 \u0085 \u009b', 99999999.99,
    now(), now(), true),
   ('Dates', 'Epoch', '', 0.01, '2001-02-03 04:05:06+00', '2001-02-03 04:05:06.1+00', true),
   ('Deleted', 'Gone', NULL, 1, now(), now(), false)
  RETURNING id" | tr '\n' ' ')
read -r unicode_id escapes_id legacy_id dates_id deleted_id <<<"$special_ids"
[[ -n $deleted_id ]] || die "inserting the special books failed"

for s in "${get_systems[@]}" "${orders_systems[@]}"; do
  [[ $s == books ]] || start_system "$s"
done

# ---- the check ---------------------------------------------------------------------
failures=()
# fetch OUT CURL-ARGS...: the answer's body into OUT; prints "status media-type".
fetch() {
  local out=$1 answer
  shift
  answer=$(curl -s -o "$out" -w '%{http_code} %{content_type}' "$@") || answer="000 -"
  answer=${answer%%;*}
  echo "${answer,,}"
}
# differ WHAT OURS THEIRS ANSWER-OURS ANSWER-THEIRS: record a difference.
differ() {
  failures+=("$1: ours '$4' $(head -c 400 "$2" | cat -v), theirs '$5' $(head -c 400 "$3" | cat -v)")
}

check_books() {
  local ids=(1 2 3 6 5000 "$books" "$unicode_id" "$escapes_id" "$legacy_id" "$dates_id"
    "$deleted_id" $((books + 1000)) 9223372036854775807 0000000000000000000001
    9223372036854775808 0 abc) id s ours theirs n=0
  for id in "${ids[@]}"; do
    ours=$(fetch "$tmp/ours.json" "${base_of[books]}/v1/books/$id")
    for s in "${get_systems[@]}"; do
      [[ $s == books || $s == floor ]] && continue
      theirs=$(fetch "$tmp/theirs.json" "${base_of[$s]}/v1/books/$id")
      if [[ $ours != "$theirs" ]] || ! cmp -s "$tmp/ours.json" "$tmp/theirs.json"; then
        differ "$s GET /v1/books/$id" "$tmp/ours.json" "$tmp/theirs.json" "$ours" "$theirs"
      fi
      n=$((n + 1))
    done
  done
  log "check: GET /v1/books/{id}: ${#ids[@]} ids, $n comparisons"
}

# The order's own id and created_at differ between the two databases.
normalize() { sed -E 's/^\{"id":[0-9]+,/{"id":0,/; s/"created_at":"[^"]*"/"created_at":""/' "$1"; }

# post SYSTEM OUT BODY [KEY]: POST /v1/orders; prints "status media-type replayed".
post() {
  local system=$1 out=$2 body=$3 key=${4:-} args=() answer replayed
  [[ -z $key ]] || args=(-H "Idempotency-Key: $key")
  answer=$(fetch "$out" -D "$out.headers" -X POST -H 'Content-Type: application/json' \
    "${args[@]}" -d "$body" "${base_of[$system]}/v1/orders")
  replayed=$(tr -d '\r' <"$out.headers" | awk -F': *' 'tolower($1) == "idempotent-replayed" { print $2 }')
  echo "$answer ${replayed:--}"
}

check_orders() {
  local s ours theirs n=0 i body key
  local bodies=("{\"book_id\": $unicode_id, \"quantity\": 3}" "{\"book_id\": $escapes_id, \"quantity\": 10000}"
    "{\"book_id\": $legacy_id, \"quantity\": 2}" "{\"book_id\": $dates_id, \"quantity\": 7}"
    "{\"book_id\": $((books + 1000)), \"quantity\": 1}" "{\"book_id\": $deleted_id, \"quantity\": 1}"
    '{"book_id": 5, "quantity": 2}' '{"book_id": 5, "quantity": 2}' '{"book_id": 5, "quantity": 3}')
  local keys=("" "" "" "" "" "" key-1 key-1 key-1)
  for s in "${orders_systems[@]}"; do
    [[ $s == orders || $s == orders-c* ]] && continue # ours, differently configured
    for i in "${!bodies[@]}"; do
      body=${bodies[i]}
      key=${keys[i]}
      ours=$(post orders "$tmp/ours.json" "$body" "$key")
      theirs=$(post "$s" "$tmp/theirs.json" "$body" "$key")
      normalize "$tmp/ours.json" >"$tmp/ours.norm"
      normalize "$tmp/theirs.json" >"$tmp/theirs.norm"
      if [[ $ours != "$theirs" ]] || ! cmp -s "$tmp/ours.norm" "$tmp/theirs.norm"; then
        differ "$s POST /v1/orders $body${key:+ (Idempotency-Key $key)}" \
          "$tmp/ours.json" "$tmp/theirs.json" "$ours" "$theirs"
      fi
      n=$((n + 1))
    done
    # the replay (the 8th POST) answered the first order with that key
    [[ $(sql "${s//-/_}" "SELECT count(*) FROM orders WHERE idempotency_key = 'key-1'") == 1 ]] \
      || failures+=("$s: not exactly one order for Idempotency-Key key-1")
    [[ $(sql "${s//-/_}" "SELECT count(*) FROM orders o LEFT JOIN outbox x ON x.order_id = o.id
                          WHERE x.id IS NULL") == 0 ]] \
      || failures+=("$s: an order without its outbox row")
  done
  ((n == 0)) || log "check: POST /v1/orders: $n comparisons"
}

check_books
check_orders
if ((${#failures[@]} > 0)); then
  printf 'DIFFERENT: %s\n' "${failures[@]}" >&2
  die "the check found ${#failures[@]} difference(s)"
fi
log "check passed: every peer answers like ours"
[[ $mode == bench ]] || exit 0

# ---- measurements ------------------------------------------------------------------
hz=$(getconf CLK_TCK)
# tree PID: PID and its descendants.
tree() {
  local child
  echo "$1"
  for child in $(ps -o pid= --ppid "$1"); do
    tree "$child"
  done
}
# tree_cpu PID...: user + system CPU ticks of those processes.
tree_cpu() {
  local pid
  for pid in "$@"; do
    cat "/proc/$pid/stat" 2>/dev/null || true
  done | awk '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%d", t }'
}
# tree_rss PID...: the sum of their VmRSS in kB.
tree_rss() {
  local pid
  for pid in "$@"; do
    bench_rss "$pid" VmRSS 2>/dev/null || true
  done | awk '{ t += $1 } END { printf "%d", t }'
}
field() { sed -n 's/^WRK_RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
raw=$tmp/raw.txt
runs=$tmp/runs.txt
: >"$raw"
: >"$runs"

# measure KIND SYSTEM ROUND SECONDS: one load run; unless ROUND is "warm-up",
# appends "kind system round req/s p50_us p99_us rss_kb cpu_us books_us pg_us
# requests errors" to $runs.
measure() {
  local kind=$1 system=$2 round=$3 seconds=$4 out=$tmp/run.txt script base pids
  local cpu0 cpu1 books0 books1 pg0 pg1 requests us rps errors
  if [[ $system == pgbench ]]; then
    bench_run "$pgbench" -n -M prepared -c "$connections" -j "$threads" -T "$seconds" \
      -f "$here/select.sql" -h 127.0.0.1 -p "$pg_port" -U postgres "$books_db" >"$out" 2>&1 \
      || die "pgbench failed: $(tail -n 20 "$out")"
    { echo "== $kind $system round $round =="; cat "$out"; } >>"$raw"
    rps=$(sed -n 's/^tps = \([0-9]*\)[0-9.]* (without initial connection time)/\1/p' "$out")
    [[ -n $rps ]] || die "cannot read pgbench's output: $(cat "$out")"
    errors=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    [[ $round == warm-up ]] || echo "$kind $system $round $rps - - - - - - - ${errors:-0}" >>"$runs"
    return 0
  fi
  script=$here/random-id.lua
  [[ $kind == get ]] || script=$here/create-order.lua
  base=${base_of[$system]}
  mapfile -t pids < <(tree "${pid_of[$system]}")
  cpu0=$(tree_cpu "${pids[@]}")
  books0=$(tree_cpu "${pid_of[books]}")
  pg0=$(bench_pg_cpu_seconds)
  bench_run wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$script" "$base" \
    >"$out" 2>&1 || die "wrk against $system failed: $(cat "$out")"
  cpu1=$(tree_cpu "${pids[@]}")
  books1=$(tree_cpu "${pid_of[books]}")
  pg1=$(bench_pg_cpu_seconds)
  kill -0 "${pid_of[$system]}" 2>/dev/null || die "$system died: $(tail -n 5 "$tmp/$system.log")"
  { echo "== $kind $system round $round =="; cat "$out"; } >>"$raw"
  requests=$(field "$out" requests)
  [[ -n $requests ]] || die "no WRK_RESULT line in wrk's output: $(cat "$out")"
  ((requests > 0)) || die "wrk completed no request against $system"
  us=$(field "$out" duration_us)
  errors=$(($(field "$out" non2xx) + $(field "$out" connect_errors) + $(field "$out" read_errors) \
    + $(field "$out" write_errors) + $(field "$out" timeouts)))
  ((errors == 0)) || failures+=("$kind $system round $round: $errors non-2xx answers or socket errors")
  [[ $round == warm-up ]] && return 0
  awk -v k="$kind" -v s="$system" -v r="$round" -v n="$requests" -v us="$us" \
    -v p50="$(field "$out" p50_us)" -v p99="$(field "$out" p99_us)" \
    -v rss="$(tree_rss "${pids[@]}")" -v c0="$cpu0" -v c1="$cpu1" -v b0="$books0" -v b1="$books1" \
    -v g0="$pg0" -v g1="$pg1" -v hz="$hz" -v e="$errors" \
    'BEGIN { tick = 1e6 / hz;
      printf "%s %s %s %.0f %d %d %d %.1f %s %.1f %d %d\n", k, s, r, n / (us / 1e6), p50, p99, rss,
        (c1 - c0) * tick / n, k == "orders" ? sprintf("%.1f", (b1 - b0) * tick / n) : "-",
        (g1 - g0) * 1e6 / n, n, e }' >>"$runs"
}

# one round: every system once, in turn
run_round() {
  local round=$1 seconds=$2 s
  for s in "${bench_systems[@]}"; do
    log "round $round: GET /v1/books/{id}, $s, ${seconds}s"
    measure get "$s" "$round" "$seconds"
  done
  for s in "${orders_systems[@]}"; do
    log "round $round: POST /v1/orders, $s, ${seconds}s"
    measure orders "$s" "$round" "$seconds"
  done
}

bench_systems=()
for s in "${systems[@]}"; do
  [[ $s == pgbench || -n ${pid_of[$s]:-} ]] && bench_systems+=("$s")
done
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
ticks_before=$(cpu_ticks)
((warmup == 0)) || run_round warm-up "$warmup"
for ((round = 1; round <= rounds; round++)); do
  run_round "$round" "$duration"
done
machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")

# ---- summary -----------------------------------------------------------------------
describe() {
  case $1 in
    books) echo "bookstore-books, $(nproc) loops" ;;
    books-1) echo "bookstore-books, 1 loop" ;;
    fastapi-1) echo "FastAPI + asyncpg, uvicorn 1 worker" ;;
    fastapi-2) echo "FastAPI + asyncpg, uvicorn 2 workers" ;;
    fastify-1) echo "fastify + postgres.js, 1 process" ;;
    fastify-2) echo "fastify + postgres.js, cluster of 2" ;;
    gin) echo "Gin + pgx" ;;
    floor) echo "bare libsoup-3, constant body" ;;
    pgbench) echo "pgbench, the same SELECT" ;;
    orders) echo "bookstore-orders" ;;
    orders-c*) echo "bookstore-orders, ${1#orders-c} conns to Books" ;;
    gin-orders) echo "Gin + pgx Orders" ;;
  esac
}
# table KIND SYSTEM...: one line of medians per system.
table() {
  local kind=$1 s reference=books extra=""
  shift
  if [[ $kind == orders ]]; then
    reference=orders
    extra="books us/r"
  fi
  printf '%-38s %7s %13s %6s %9s %9s %8s %8s %8s %s\n' system req/s "(min-max)" "vs ours" p50 p99 RSS \
    "CPU us/r" "PG us/r" "$extra"
  for s in "$@"; do
    awk -v k="$kind" -v s="$s" -v ref="$reference" -v name="$(describe "$s")" '
      function median(v, n,   i, j, t) {
        if (n == 0 || v[1] == "-") return "-"
        for (i = 1; i <= n; i++)
          for (j = i + 1; j <= n; j++)
            if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      }
      function num(x) { return x == "-" ? "-" : sprintf("%.0f", x) }
      function ms(x) { return x == "-" ? "-" : sprintf("%.2f ms", x / 1000) }
      function mb(x) { return x == "-" ? "-" : sprintf("%.1f MB", x / 1024) }
      $1 == k && $2 == ref { r[++nr] = $4 }
      $1 == k && $2 == s {
        n++; rps[n] = $4; p50[n] = $5; p99[n] = $6; rss[n] = $7; cpu[n] = $8; bk[n] = $9; pg[n] = $10
        if (n == 1 || $4 + 0 < lo) lo = $4 + 0
        if (n == 1 || $4 + 0 > hi) hi = $4 + 0
      }
      END {
        if (n == 0) exit
        m = median(rps, n); mr = median(r, nr)
        printf "%-38s %7.0f %13s %6s %9s %9s %8s %8s %8s %s\n", name, m, lo "-" hi,
          (mr == "-" || mr == 0) ? "-" : sprintf("%.2f", m / mr), ms(median(p50, n)),
          ms(median(p99, n)), mb(median(rss, n)), num(median(cpu, n)), num(median(pg, n)),
          k == "orders" ? num(median(bk, n)) : ""
      }' "$runs"
  done
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
  revision="$revision (with uncommitted changes)"
fi
deb() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
versions=("bookstore $("$books_bin" --version 2>/dev/null | head -n 1 | awk '{ print $NF }') at $revision"
  "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{ print $3 }')"
  "libsoup $(pkg-config --modversion libsoup-3.0 2>/dev/null || echo "?")"
  "$({ wrk --version 2>&1 || true; } | head -n 1 | cut -d' ' -f1-2)")
wants fastapi && versions+=("Python $("$python" -c 'import platform; print(platform.python_version())')
    fastapi $(deb python3-fastapi) uvicorn $(deb python3-uvicorn) asyncpg $(deb python3-asyncpg)
    uvloop $(deb python3-uvloop) httptools $(deb python3-httptools) pydantic $(deb python3-pydantic)")
pkg_version() { sed -n 's/^  "version": "\(.*\)",$/\1/p' "$node_path/$1/package.json"; }
wants fastify && versions+=("Node $(node --version) fastify $(pkg_version fastify) postgres.js $(pkg_version postgres)")
wants gin && versions+=("$(go version | awk '{ print $3 }') gin $(deb golang-github-gin-gonic-gin-dev)
    pgx $(deb golang-github-jackc-pgx-v4-dev)")

mkdir -p "$results_dir"
{
  echo "Peers benchmark (bench/peers.sh), $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  echo "machine:  $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r); load average before: $loadavg;" \
    "during the runs: $machine"
  printf 'software: %s\n' "$(printf '%s; ' "${versions[@]}" | tr -s ' \n' ' ' | sed 's/; $//')"
  echo "setup:    $books books; wrk -t$threads -c$connections -d${duration}s --latency, $rounds rounds" \
    "interleaved after a ${warmup}s warm-up each; pools of $pool_size connections per process"
  echo "check:    every peer answered like ours (status, media type, body byte for byte)"
  echo
  echo "GET /v1/books/{random id}: medians of $rounds rounds; CPU us/r: the system's own processes per" \
    "request; PG us/r: PostgreSQL's per request"
  table get "${bench_systems[@]}"
  if ((${#orders_systems[@]} > 0)); then
    echo
    echo "POST /v1/orders (random books 1..100, quantity 1..5), through our Books: medians of $rounds rounds;" \
      "books us/r: our Books' CPU per order"
    table orders "${orders_systems[@]}"
  fi
  if ((${#failures[@]} > 0)); then
    echo
    printf 'FAILED: %s\n' "${failures[@]}"
  fi
} | tee "$results_dir/peers-latest.txt"
{
  echo "== runs: kind system round req/s p50_us p99_us rss_kb cpu_us books_us pg_us requests errors =="
  cat "$runs"
  cat "$raw"
} >"$results_dir/peers-latest-raw.txt"

((${#failures[@]} == 0)) || die "failures during the run (see above and $results_dir/peers-latest-raw.txt)"
