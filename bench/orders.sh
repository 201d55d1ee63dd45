#!/bin/bash
# Benchmark POST /v1/orders (bookstore-orders calling bookstore-books), then
# the same endpoint failing fast with the circuit breaker to Books open.
#
#   bench/orders.sh
#
# Starts a throwaway PostgreSQL on a free loopback port with two databases,
# starts the built bookstore-books and bookstore-orders against them on free
# loopback ports (Orders' BOOKS_SERVICE_URL pointing at that Books), creates
# 100 books through POST /v1/books, then measures in turn:
#   - order creation: wrk, 64 connections, 2 threads, POST /v1/orders with
#     {"book_id": random 1..100, "quantity": random 1..5} (bench/create-order.lua)
#     after an unmeasured warm-up; every order is one GET /v1/books/{id} from
#     Orders to Books plus one INSERT. Reports req/s, p50/p90/p99, the CPU both
#     daemons used, their VmRSS/VmHWM afterwards, and checks that the number of
#     orders the service reports (X-Total-Count) grew by at least wrk's
#     completed requests: it may exceed them by up to one per connection, the
#     requests still in flight when wrk stopped counting, which the service
#     completes anyway;
#   - fail-fast: Books is stopped with SIGTERM, single POSTs are sent until
#     books_circuit_state in Orders' /metrics reads 1 (open; after
#     BOOKS_CIRCUIT_FAILURE_THRESHOLD consecutive failures, default 5), then
#     wrk runs against POST /v1/orders for CIRCUIT_DURATION seconds; every
#     answer must be 503 without Orders calling Books.
# The summary goes to bench/results/orders-latest.txt, the raw output of the
# tools to bench/results/orders-latest-raw.txt.
#
# Environment:
#   DURATION               seconds of the order-creation measurement (default 15)
#   WARMUP                 seconds of unmeasured load first (default 3)
#   CIRCUIT_DURATION       seconds of the fail-fast measurement (default 5)
#   BOOKSTORE_BUILD_DIR    meson build directory (default: build/ in the repo)
#   PG_BINDIR              PostgreSQL server binaries (default: newest
#                          /usr/lib/postgresql/*/bin)
#   BOOKS_CIRCUIT_COOLDOWN_MS
#                          Orders' open-circuit cooldown; set here to 60000
#                          unless given, so the whole fail-fast run happens in
#                          one open period (the daemon's default is 10000)
# Other settings of the daemons (ORDERS_DB_POOL_SIZE, BOOKS_DB_POOL_SIZE,
# BOOKS_CIRCUIT_FAILURE_THRESHOLD, ...) are passed through from the
# environment; the script only sets their addresses and databases.
#
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero when
# something failed (a non-2xx answer or socket error under load, fewer orders
# in the database than wrk completed, a circuit that does not open or an answer
# other than 503 while it is open, a process that did not start or died).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"
duration=${DURATION:-15}
warmup=${WARMUP:-3}
circuit_duration=${CIRCUIT_DURATION:-5}
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
cooldown_ms=${BOOKS_CIRCUIT_COOLDOWN_MS:-60000}
threshold=${BOOKS_CIRCUIT_FAILURE_THRESHOLD:-5}
books=100
connections=64
threads=2
results_dir=$here/results
books_db=bookstore_books
orders_db=bookstore_orders

[[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$duration'"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be an integer, not '$warmup'"
[[ $circuit_duration =~ ^[1-9][0-9]*$ ]] || die "CIRCUIT_DURATION must be a positive integer"
[[ $cooldown_ms =~ ^[1-9][0-9]*$ ]] || die "BOOKS_CIRCUIT_COOLDOWN_MS must be a positive integer"
[[ $threshold =~ ^[1-9][0-9]*$ ]] || die "BOOKS_CIRCUIT_FAILURE_THRESHOLD must be a positive integer"
((cooldown_ms >= (circuit_duration + 10) * 1000)) \
  || log "warning: BOOKS_CIRCUIT_COOLDOWN_MS=$cooldown_ms may end during the fail-fast run"
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
books_bin=$build_dir/books/bookstore-books
orders_bin=$build_dir/orders/bookstore-orders
for bin in "$books_bin" "$orders_bin"; do
  [[ -x $bin ]] || die "$bin not found: build first (meson setup build && ninja -C build)"
done

bench_find_pg_bindir

# ---- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
bench_install "${missing[@]}"

# ---- cleanup of everything started: see lib.sh ---------------------------------
bench_init orders-bench

# ---- PostgreSQL --------------------------------------------------------------
pg_start
sql postgres "CREATE DATABASE $books_db" >/dev/null
sql postgres "CREATE DATABASE $orders_db" >/dev/null
log "PostgreSQL: listening on 127.0.0.1:$pg_port, databases $books_db and $orders_db"

# ---- the daemons ---------------------------------------------------------------
bench_start_daemon bookstore-books "$tmp/books.log" "$books_bin" \
  BOOKS_DB_DSN="postgresql://postgres@127.0.0.1:$pg_port/$books_db"
books_pid=$started_pid
books_base=http://127.0.0.1:$started_port
log "bookstore-books: pid $books_pid on $books_base"

# /health of Orders answers 200 only once its database and Books both do.
bench_start_daemon bookstore-orders "$tmp/orders.log" "$orders_bin" \
  DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/$orders_db" \
  BOOKS_SERVICE_URL="$books_base" BOOKS_CIRCUIT_COOLDOWN_MS="$cooldown_ms"
orders_pid=$started_pid
base=http://127.0.0.1:$started_port
log "bookstore-orders: pid $orders_pid on $base"

# ---- 100 books through Books' API ------------------------------------------------
for ((i = 1; i <= books; i++)); do
  price=$(printf '%d.%02d' $((1 + (i * 37) % 60)) $(((i * 53) % 100)))
  body="{\"title\":\"Bench book $i\",\"author\":\"Author $((i % 17))\",\"price\":\"$price\"}"
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "$body" "$books_base/v1/books")
  [[ $status == 201 ]] || die "POST /v1/books answered $status"
done
loaded=$(sql "$books_db" "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM books WHERE active")
[[ $loaded == "$books 1 $books" ]] || die "expected book ids 1..$books, found (count min max) $loaded"
log "created $books books"

# ---- helpers -------------------------------------------------------------------
# X-Total-Count of GET /v1/orders: the number of orders the service reports.
orders_total() {
  curl -s -D - -o /dev/null "$base/v1/orders?limit=1" \
    | tr -d '\r' | awk -F': *' 'tolower($1) == "x-total-count" { print $2 }'
}
# metric 'name{labels}': one sample from Orders' /metrics.
metric() {
  curl -s "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
# field FILE KEY: a value from the WRK_RESULT line bench/create-order.lua prints.
field() {
  sed -n 's/^WRK_RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
rate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n / (us / 1e6) }'; }
cpu_share() {
  awk -v a="$1" -v b="$2" -v us="$3" 'BEGIN { printf "%.0f%%", 100 * (b - a) / (us / 1e6) }'
}
socket_errors() {
  echo $(($(field "$1" connect_errors) + $(field "$1" read_errors) \
    + $(field "$1" write_errors) + $(field "$1" timeouts)))
}
# load SECONDS OUTPUT [WRK OPTION...]: wrk with create-order.lua against Orders.
load() {
  local seconds=$1 out=$2
  shift 2
  bench_run wrk -t"$threads" -c"$connections" -d"${seconds}s" "$@" -s "$here/create-order.lua" \
    "$base" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
  [[ -n $(field "$out" requests) ]] || die "no WRK_RESULT line in wrk's output: $(cat "$out")"
}
alive() { kill -0 "$1" 2>/dev/null || die "$2 died: $(tail -n 5 "$tmp/$2.log")"; }

failures=()

# ---- order creation ----------------------------------------------------------------
if ((warmup > 0)); then
  log "wrk: ${warmup}s warm-up"
  load "$warmup" "$tmp/warmup.txt"
  warmup_summary="$(field "$tmp/warmup.txt" requests) requests, answers $(field "$tmp/warmup.txt" statuses)"
  warmup_errors="$(field "$tmp/warmup.txt" non2xx) non-2xx, $(socket_errors "$tmp/warmup.txt") socket errors"
  [[ $warmup_errors == "0 non-2xx, 0 socket errors" ]] || failures+=("warm-up: $warmup_errors")
  sleep 1 # let the service finish what was in flight when wrk stopped
else
  warmup_summary="none"
fi
orders_before=$(orders_total)
[[ $orders_before =~ ^[0-9]+$ ]] || die "GET /v1/orders gave no X-Total-Count"

log "wrk: -t$threads -c$connections -d${duration}s POST /v1/orders"
orders_cpu_before=$(bench_cpu_seconds "$orders_pid")
books_cpu_before=$(bench_cpu_seconds "$books_pid")
pg_cpu_before=$(bench_pg_cpu_seconds)
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
ticks_before=$(cpu_ticks)
load "$duration" "$tmp/wrk.txt" --latency
machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")
orders_cpu_after=$(bench_cpu_seconds "$orders_pid")
books_cpu_after=$(bench_cpu_seconds "$books_pid")
pg_cpu_after=$(bench_pg_cpu_seconds)
alive "$orders_pid" orders
alive "$books_pid" books

requests=$(field "$tmp/wrk.txt" requests)
duration_us=$(field "$tmp/wrk.txt" duration_us)
non2xx=$(field "$tmp/wrk.txt" non2xx)
sockets=$(socket_errors "$tmp/wrk.txt")
statuses=$(field "$tmp/wrk.txt" statuses)
rps=$(rate "$requests" "$duration_us")
orders_cpu=$(cpu_share "$orders_cpu_before" "$orders_cpu_after" "$duration_us")
books_cpu=$(cpu_share "$books_cpu_before" "$books_cpu_after" "$duration_us")
pg_cpu=$(cpu_share "$pg_cpu_before" "$pg_cpu_after" "$duration_us")
((non2xx == 0 && sockets == 0)) \
  || failures+=("order creation: $non2xx non-2xx answers ($statuses), $sockets socket errors")

# Requests wrk sent but stopped waiting for at the deadline are still being
# served: give them a moment, then count.
sleep 1
orders_rss="VmRSS $(bench_rss "$orders_pid" VmRSS), VmHWM $(bench_rss "$orders_pid" VmHWM)"
books_rss="VmRSS $(bench_rss "$books_pid" VmRSS), VmHWM $(bench_rss "$books_pid" VmHWM)"
orders_after=$(orders_total)
[[ $orders_after =~ ^[0-9]+$ ]] || die "GET /v1/orders gave no X-Total-Count"
orders_rows=$(sql "$orders_db" "SELECT count(*) FROM orders")
orders_created_metric=$(metric orders_created_total)
created=$((orders_after - orders_before))
extra=$((created - (requests - non2xx)))
if ((extra < 0)); then
  failures+=("orders: $created new orders for $((requests - non2xx)) successful requests")
elif ((extra > connections)); then
  failures+=("orders: $created new orders: $extra more than wrk completed (at most $connections expected)")
fi
[[ $orders_rows == "$orders_after" ]] \
  || failures+=("orders: X-Total-Count $orders_after but $orders_rows rows in the table")

# ---- fail-fast with the circuit open -----------------------------------------------
log "stopping bookstore-books (SIGTERM)"
bench_stop "$books_pid"
: >"$tmp/open.txt"
opened_after=
for ((i = 1; i <= threshold + 5; i++)); do
  status=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X POST \
    -H 'Content-Type: application/json' -d '{"book_id": 1, "quantity": 1}' "$base/v1/orders")
  echo "POST $i with Books stopped: $status (status, seconds)" >>"$tmp/open.txt"
  [[ ${status% *} == 503 ]] || failures+=("POST with Books stopped answered ${status% *}, not 503")
  if [[ $(metric books_circuit_state) == 1 ]]; then
    opened_after=$i
    break
  fi
done
[[ -n $opened_after ]] \
  || die "the circuit did not open after $((threshold + 5)) failed POSTs: $(cat "$tmp/open.txt")"
log "circuit open after $opened_after POSTs"
curl -s -D "$tmp/fast-headers.txt" -o "$tmp/fast-body.txt" -X POST \
  -H 'Content-Type: application/json' -d '{"book_id": 1, "quantity": 1}' "$base/v1/orders"
{
  echo "one POST with the circuit open:"
  tr -d '\r' <"$tmp/fast-headers.txt"
  cat "$tmp/fast-body.txt"
  echo
} >>"$tmp/open.txt"
retry_after=$(tr -d '\r' <"$tmp/fast-headers.txt" | awk -F': *' 'tolower($1) == "retry-after" { print $2 }')
head -n 1 "$tmp/fast-headers.txt" | grep -q ' 503' \
  || failures+=("POST with the circuit open: $(head -n 1 "$tmp/fast-headers.txt")")
[[ -n $retry_after ]] || failures+=("POST with the circuit open: no Retry-After header")

rejected_before=$(metric 'books_requests_total{result="rejected"}')
refused_before=$(metric 'books_requests_total{result="connection_error"}')
orders_before_open=$(orders_total)
open_loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
open_cpu_before=$(bench_cpu_seconds "$orders_pid")
ticks_before=$(cpu_ticks)
log "wrk: -t$threads -c$connections -d${circuit_duration}s POST /v1/orders, circuit open"
load "$circuit_duration" "$tmp/wrk-open.txt" --latency
open_machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")
open_cpu_after=$(bench_cpu_seconds "$orders_pid")
alive "$orders_pid" orders
open_requests=$(field "$tmp/wrk-open.txt" requests)
open_duration_us=$(field "$tmp/wrk-open.txt" duration_us)
open_statuses=$(field "$tmp/wrk-open.txt" statuses)
open_sockets=$(socket_errors "$tmp/wrk-open.txt")
open_rps=$(rate "$open_requests" "$open_duration_us")
open_cpu=$(cpu_share "$open_cpu_before" "$open_cpu_after" "$open_duration_us")
sleep 1
open_state=$(metric books_circuit_state)
rejected=$(($(metric 'books_requests_total{result="rejected"}') - rejected_before))
refused=$(($(metric 'books_requests_total{result="connection_error"}') - refused_before))
orders_after_open=$(orders_total)
[[ $open_statuses == "503:$open_requests" ]] \
  || failures+=("circuit open: answers $open_statuses, expected only 503")
((open_sockets == 0)) || failures+=("circuit open: $open_sockets socket errors")
[[ $open_state == 1 ]] || failures+=("circuit open: books_circuit_state $open_state after the run, not 1")
((refused == 0)) || failures+=("circuit open: Orders still called Books $refused times")
((rejected >= open_requests)) \
  || failures+=("circuit open: $rejected rejected by the circuit, fewer than wrk's $open_requests answers")
[[ $orders_after_open == "$orders_before_open" ]] \
  || failures+=("circuit open: orders went from $orders_before_open to $orders_after_open")

# ---- summary -------------------------------------------------------------------
field_ms() { ms "$(field "$1" "$2")"; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
version() { "$1" --version 2>/dev/null | head -n 1 || echo "$(basename "$1") (unknown version)"; }
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
  revision="$revision (with uncommitted changes)"
fi

mkdir -p "$results_dir"
{
  echo "Orders benchmark: POST /v1/orders, then with the Books circuit open, $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  echo "machine:   $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
  echo "software:  $(version "$orders_bin"), $(version "$books_bin") at $revision;" \
    "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{ print $3 }'); $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
  echo "setup:     $books books; $connections connections, $threads threads, ${duration}s after a ${warmup}s warm-up" \
    "($warmup_summary); pools: orders ${ORDERS_DB_POOL_SIZE:-4}, books ${BOOKS_DB_POOL_SIZE:-4}"
  echo
  echo "order creation (wrk): $rps req/s   p50 $(field_ms "$tmp/wrk.txt" p50_us)" \
    "  p90 $(field_ms "$tmp/wrk.txt" p90_us)   p99 $(field_ms "$tmp/wrk.txt" p99_us)" \
    "  max $(field_ms "$tmp/wrk.txt" max_us)"
  echo "                      $requests requests, answers $statuses, $non2xx non-2xx, $sockets socket errors"
  echo "                      CPU: orders $orders_cpu, books $books_cpu, PostgreSQL $pg_cpu of one core;" \
    "machine $machine (load average before: $loadavg)"
  echo "orders in database:   $orders_before before, $orders_after after: $created new for $requests completed" \
    "requests ($extra more: in flight at wrk's deadline, at most $connections);" \
    "table rows $orders_rows, orders_created_total $orders_created_metric"
  echo "memory after the run: orders $orders_rss"
  echo "                      books  $books_rss"
  echo
  echo "circuit open:         Books stopped; open after $opened_after failed POSTs (threshold $threshold)," \
    "Retry-After ${retry_after:-missing}"
  echo "fail-fast (wrk):      $open_rps req/s   p50 $(field_ms "$tmp/wrk-open.txt" p50_us)" \
    "  p90 $(field_ms "$tmp/wrk-open.txt" p90_us)   p99 $(field_ms "$tmp/wrk-open.txt" p99_us)" \
    "  max $(field_ms "$tmp/wrk-open.txt" max_us)   (${circuit_duration}s)"
  echo "                      $open_requests requests, answers $open_statuses, $open_sockets socket errors;" \
    "rejected by the circuit $rejected, calls to Books $refused; state after $open_state"
  echo "                      CPU: orders $open_cpu of one core; machine $open_machine (load average before: $open_loadavg)"
  if ((${#failures[@]} > 0)); then
    echo
    printf 'FAILED: %s\n' "${failures[@]}"
  fi
} | tee "$results_dir/orders-latest.txt"
{
  echo "== wrk warm-up =="
  cat "$tmp/warmup.txt" 2>/dev/null || echo "(no warm-up)"
  echo "== wrk: order creation =="
  cat "$tmp/wrk.txt"
  echo "== opening the circuit =="
  cat "$tmp/open.txt"
  echo "== wrk: circuit open =="
  cat "$tmp/wrk-open.txt"
  echo "== Orders' /metrics after the runs (books_*, orders_*, http_requests_total) =="
  curl -s "$base/metrics" | grep -E '^(books_|orders_|http_requests_total)' || true
} >"$results_dir/orders-latest-raw.txt"

((${#failures[@]} == 0)) || die "failures during the run (see above and $results_dir/orders-latest-raw.txt)"
