#!/bin/bash
# Overload: GET /v1/books/{id} on bookstore-books at the concurrency that
# saturates it and at 4x and 16x that, with the connection limit below the
# largest.
#
#   bench/overload.sh
#
# Starts a throwaway PostgreSQL and bookstore-books (pool 4,
# HTTP_MAX_CONNECTIONS=512, BOOKS_DB_MAX_WAITING=1024, the default), loads
# 10,000 books, then for each level in LEVELS runs wrk for DURATION seconds and
# reports: requests/s, the answers that were 200 and that were 503, the
# daemon-side p50/p99 of the 200s (DURATION_MS of its access log: the time
# from the request to the answer, queueing for a database connection
# included), wrk's own p99 over every answer, the daemon's RSS after the
# level and its peak, and how long GET /health took one second after the
# level ended (recovery). Results: bench/results/overload-latest.txt.
#
# Environment:
#   LEVELS                connection counts (default "64 256 1024")
#   DURATION              seconds per level (default 10)
#   BOOKSTORE_BUILD_DIR   meson build directory (default: build/ in the repo)
#
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero when
# something failed (the daemon died, an answer other than 200, 503 and 499).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"
levels=${LEVELS:-64 256 1024}
duration=${DURATION:-10}
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
daemon=$build_dir/books/bookstore-books
[[ -x $daemon ]] || die "$daemon not found: build first (meson setup build && ninja -C build)"
database=bookstore_overload
max_connections=512

bench_find_pg_bindir
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
bench_install "${missing[@]}"

bench_init overload
pg_start
sql postgres "CREATE DATABASE $database" >/dev/null
bench_start_daemon bookstore-books "$tmp/books.log" "$daemon" \
  BOOKS_DB_DSN="postgresql://postgres@127.0.0.1:$pg_port/$database" BOOKS_DB_POOL_SIZE=4 \
  HTTP_MAX_CONNECTIONS=$max_connections
pid=$started_pid
base=http://127.0.0.1:$started_port
bench_load_books "$base" "$database" 10000

# p50 and p99 of DURATION_MS over the access records of status 200 in a log slice
admitted_percentiles() {
  grep -o '"HTTP_STATUS":"200","DURATION_MS":"[0-9.]*"' \
    | sed 's/.*"DURATION_MS":"\([0-9.]*\)"/\1/' | sort -n \
    | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- -"; exit }
        a = int(NR * 0.5); if (a < 1) a = 1
        b = int(NR * 0.99); if (b < 1) b = 1
        printf "%.1f %.1f\n", v[a], v[b] }'
}

mkdir -p "$here/results"
report=$here/results/overload-latest.txt
{
  echo "Bookstore overload: GET /v1/books/{id}, $(date -u '+%Y-%m-%dT%H:%M:%SZ'), $(nproc) CPUs"
  echo "bookstore-books: pool 4, HTTP_MAX_CONNECTIONS=$max_connections, BOOKS_DB_MAX_WAITING=1024; wrk -t2, ${duration}s per level"
  printf '%-12s %9s %9s %9s %16s %12s %12s %14s\n' connections 'req/s' 200 503 \
    'admitted p50/p99' 'wrk p99' 'RSS after' '/health after'
} | tee "$report"
for c in $levels; do
  offset=$(stat -c %s "$tmp/books.log")
  bench_run wrk -t2 -c"$c" -d"${duration}s" --timeout 10s --latency -s "$here/random-id.lua" "$base" \
    >"$tmp/wrk-$c.txt" 2>&1 || die "wrk failed: $(cat "$tmp/wrk-$c.txt")"
  kill -0 "$pid" 2>/dev/null || die "bookstore-books died at $c connections"
  sleep 1
  health=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -m 10 "$base/health")
  field() { sed -n 's/^WRK_RESULT //p' "$tmp/wrk-$c.txt" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  requests=$(field requests)
  rps=$(awk -v n="$requests" -v us="$(field duration_us)" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
  slice=$(tail -c +"$((offset + 1))" "$tmp/books.log")
  ok=$(grep -c '"HTTP_STATUS":"200"' <<<"$slice" || true)
  shed=$(grep -c '"HTTP_STATUS":"503"' <<<"$slice" || true)
  # 499: wrk closed its connections with requests in flight when it stopped
  other=$(grep -o '"HTTP_STATUS":"[0-9]*"' <<<"$slice" | grep -cv '"200"\|"503"\|"499"' || true)
  # connections over the limit are answered 503 before any access record
  refused=$(curl -s "$base/metrics" | awk '$1 == "http_connections_refused_total" { print $2 }')
  read -r p50 p99 < <(admitted_percentiles <<<"$slice")
  printf '%-12s %9s %9s %9s %16s %12s %12s %14s\n' "$c" "$rps" "$ok" "$shed" "$p50/$p99 ms" \
    "$(awk -v us="$(field p99_us)" 'BEGIN { printf "%.1f ms", us / 1000 }')" \
    "$(bench_rss "$pid" VmRSS)" "${health#* }s (${health%% *})" | tee -a "$report"
  ((other == 0)) || die "$other answers other than 200 and 503 at $c connections: $(grep -o '"HTTP_STATUS":"[0-9]*"' <<<"$slice" | sort | uniq -c | tr "\n" " ")"
done
echo "connections refused over HTTP_MAX_CONNECTIONS (503 before reading a request), in all: ${refused:-0};" \
  "peak RSS $(bench_rss "$pid" VmHWM)" | tee -a "$report"
