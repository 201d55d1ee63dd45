#!/bin/bash
# Benchmark GET /v1/books/{id} against pgbench running the same SELECT.
#
#   bench/run.sh
#
# Starts a throwaway PostgreSQL on a free loopback port, starts the built
# bookstore-books against it, loads 10,000 books, then measures in turn:
#   - the service: wrk, 64 connections, GET /v1/books/{random id};
#   - the database alone: pgbench, 64 clients, the daemon's own SELECT, prepared;
# and prints both rates, their ratio and the daemon's memory. The summary also
# goes to bench/results/latest.txt (raw tool output: latest-raw.txt).
#
# Environment:
#   DURATION               seconds for each measurement (default 15)
#   WARMUP                 seconds of unmeasured load on the service first (default 3)
#   BOOKSTORE_BUILD_DIR    meson build directory (default: build/ in the repo)
#   BOOKS_DB_POOL_SIZE     the daemon's connection pool size (default 4)
#   PG_BINDIR              PostgreSQL server binaries (default: newest
#                          /usr/lib/postgresql/*/bin)
#
# A benchmark, not a test: it exits 0 whether or not the target (the service
# at least a quarter of pgbench's rate) is met, and non-zero when something
# failed (a non-2xx answer, a pgbench error, a process that did not start).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"
duration=${DURATION:-15}
warmup=${WARMUP:-3}
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
pool_size=${BOOKS_DB_POOL_SIZE:-4}
books=10000
connections=64
threads=2
target_ratio=0.25
results_dir=$here/results
database=bookstore_bench

[[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$duration'"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be an integer, not '$warmup'"
[[ $pool_size =~ ^[1-9][0-9]*$ ]] || die "BOOKS_DB_POOL_SIZE must be a positive integer"
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
daemon=$build_dir/books/bookstore-books
[[ -x $daemon ]] || die "$daemon not found: build first (meson setup build && ninja -C build)"

bench_find_pg_bindir

# ---- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
[[ -x $PG_BINDIR/pgbench ]] || command -v pgbench >/dev/null || missing+=(postgresql-contrib)
bench_install "${missing[@]}"
pgbench=$PG_BINDIR/pgbench
[[ -x $pgbench ]] || pgbench=$(command -v pgbench)

# ---- cleanup of everything started: see lib.sh ---------------------------------
bench_init bench

# ---- PostgreSQL --------------------------------------------------------------
pg_start
sql postgres "CREATE DATABASE $database" >/dev/null
log "PostgreSQL: listening on 127.0.0.1:$pg_port, database $database"

# ---- the daemon ----------------------------------------------------------------
bench_start_daemon bookstore-books "$tmp/books.log" "$daemon" \
  BOOKS_DB_DSN="postgresql://postgres@127.0.0.1:$pg_port/$database" BOOKS_DB_POOL_SIZE="$pool_size"
daemon_pid=$started_pid
http_port=$started_port
base=http://127.0.0.1:$http_port
log "bookstore-books: pid $daemon_pid on $base, pool size $pool_size"

# ---- 10,000 books: the first through the API, the rest in SQL -------------------
bench_load_books "$base" "$database" "$books"

cpu_seconds() { bench_cpu_seconds "$daemon_pid"; }
rss() { bench_rss "$daemon_pid" "$1"; }
rss_before=$(rss VmRSS)
hwm_before=$(rss VmHWM)

# ---- the service -------------------------------------------------------------
if ((warmup > 0)); then
  log "wrk: ${warmup}s warm-up"
  wrk -t"$threads" -c"$connections" -d"${warmup}s" -s "$here/random-id.lua" "$base" \
    >"$tmp/warmup.txt" 2>&1 || die "wrk warm-up failed: $(cat "$tmp/warmup.txt")"
fi
log "wrk: -t$threads -c$connections -d${duration}s GET /v1/books/{random id}"
cpu_before=$(cpu_seconds)
ticks_before=$(cpu_ticks)
wrk -t"$threads" -c"$connections" -d"${duration}s" --latency -s "$here/random-id.lua" "$base" \
  >"$tmp/wrk.txt" 2>&1 || die "wrk failed: $(cat "$tmp/wrk.txt")"
cpu_after=$(cpu_seconds)
wrk_machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")
rss_after=$(rss VmRSS)
hwm_after=$(rss VmHWM)
kill -0 "$daemon_pid" 2>/dev/null || die "bookstore-books died during the run"

wrk_field() {
  sed -n 's/^WRK_RESULT //p' "$tmp/wrk.txt" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
wrk_requests=$(wrk_field requests)
[[ -n $wrk_requests ]] || die "no WRK_RESULT line in wrk's output: $(cat "$tmp/wrk.txt")"
wrk_duration_us=$(wrk_field duration_us)
wrk_p50_us=$(wrk_field p50_us)
wrk_p99_us=$(wrk_field p99_us)
wrk_non2xx=$(wrk_field non2xx)
wrk_socket_errors=$(($(wrk_field connect_errors) + $(wrk_field read_errors) \
  + $(wrk_field write_errors) + $(wrk_field timeouts)))
daemon_cpu=$(awk -v a="$cpu_before" -v b="$cpu_after" -v us="$wrk_duration_us" \
  'BEGIN { printf "%.0f%%", 100 * (b - a) / (us / 1e6) }')
wrk_rps=$(awk -v n="$wrk_requests" -v us="$wrk_duration_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')

# ---- the database alone ------------------------------------------------------
log "pgbench: -M prepared -c $connections -j $threads -T $duration bench/select.sql"
ticks_before=$(cpu_ticks)
"$pgbench" -n -M prepared -c "$connections" -j "$threads" -T "$duration" -f "$here/select.sql" \
  -h 127.0.0.1 -p "$pg_port" -U postgres "$database" >"$tmp/pgbench.txt" 2>&1 \
  || die "pgbench failed: $(tail -n 20 "$tmp/pgbench.txt")"
pg_machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")
pg_tps=$(sed -n 's/^tps = \([0-9]*\)[0-9.]* (without initial connection time)/\1/p' "$tmp/pgbench.txt")
pg_latency_ms=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$tmp/pgbench.txt")
pg_failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/pgbench.txt")
[[ -n $pg_tps && -n $pg_latency_ms ]] || die "cannot read pgbench's output: $(cat "$tmp/pgbench.txt")"

# ---- summary -------------------------------------------------------------------
ratio=$(awk -v a="$wrk_rps" -v b="$pg_tps" 'BEGIN { printf "%.3f", a / b }')
verdict=$(awk -v r="$ratio" -v t="$target_ratio" \
  'BEGIN { if (r >= t) print "met"; else print "NOT met" }')
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
version=$("$daemon" --version 2>/dev/null || echo "bookstore-books (unknown version)")
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$root" diff --quiet HEAD -- 2>/dev/null; then
  revision="$revision (with uncommitted changes)"
fi

mkdir -p "$results_dir"
{
  echo "Bookstore benchmark: GET /v1/books/{id} vs pgbench, $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  echo "machine:   $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
  echo "software:  $version at $revision; $("$pgbench" --version); $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
  echo "setup:     $books books; $connections connections, $threads threads, ${duration}s each" \
    "(service after a ${warmup}s warm-up); daemon pool $pool_size"
  echo
  echo "service (wrk):      $wrk_rps req/s   p50 $(ms "$wrk_p50_us")   p99 $(ms "$wrk_p99_us")" \
    "  ($wrk_requests requests, $wrk_non2xx non-2xx, $wrk_socket_errors socket errors)"
  echo "                    daemon CPU $daemon_cpu of one core; machine $wrk_machine"
  echo "database (pgbench): $pg_tps tps   average latency $pg_latency_ms ms" \
    "  (${pg_failed:-0} failed)"
  echo "                    machine $pg_machine"
  echo "ratio service/pgbench: $ratio   (target >= $target_ratio: $verdict)"
  echo "daemon memory:      before VmRSS $rss_before, VmHWM $hwm_before;" \
    "after VmRSS $rss_after, VmHWM $hwm_after"
} | tee "$results_dir/latest.txt"
{
  echo "== wrk =="
  cat "$tmp/wrk.txt"
  echo "== pgbench =="
  cat "$tmp/pgbench.txt"
} >"$results_dir/latest-raw.txt"

if ((wrk_non2xx > 0 || wrk_socket_errors > 0 || ${pg_failed:-0} > 0)); then
  die "errors during the run (see above and $results_dir/latest-raw.txt)"
fi
