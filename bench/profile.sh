#!/bin/bash
# Where a daemon's CPU goes under load: perf record of bookstore-books
# (GET /v1/books/{id}) or bookstore-orders (POST /v1/orders through Books),
# then perf report's top functions, self and with children.
#
#   bench/profile.sh books|orders
#
# Environment: DURATION (seconds of load, default 10), THREADS (the daemon's
# event loops, default 1), BOOKSTORE_BUILD_DIR (default build/; a release
# build with frame pointers profiles best: meson setup build-prof
# --buildtype=release -Dc_args=-fno-omit-frame-pointer). Output:
# bench/results/profile-TARGET.txt and perf.data beside it. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"

target=${1:-}
[[ $target == books || $target == orders ]] || die "usage: bench/profile.sh books|orders"
duration=${DURATION:-10}
threads=${THREADS:-1}
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
books_bin=$build_dir/books/bookstore-books
orders_bin=$build_dir/orders/bookstore-orders
out=$here/results/profile-$target.txt

bench_find_pg_bindir
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v perf >/dev/null || missing+=(linux-perf)
command -v curl >/dev/null || missing+=(curl)
command -v strace >/dev/null || missing+=(strace)
bench_install "${missing[@]}"

bench_init profile
pg_start
sql postgres "CREATE DATABASE books" >/dev/null
sql postgres "CREATE DATABASE orders" >/dev/null

bench_start_daemon books "$tmp/books.log" "$books_bin" \
  BOOKS_DB_DSN="postgresql://postgres@127.0.0.1:$pg_port/books" BOOKS_DB_POOL_SIZE=16 \
  BOOKS_THREADS="$threads"
books_pid=$started_pid
books_base=http://127.0.0.1:$started_port
bench_load_books "$books_base" books 10000 # ids 1..10000; orders use 1..100

if [[ $target == books ]]; then
  pid=$books_pid
  url=$books_base
  script=$here/random-id.lua
else
  bench_start_daemon orders "$tmp/orders.log" "$orders_bin" \
    DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/orders" ORDERS_DB_POOL_SIZE=16 \
    BOOKS_SERVICE_URL="$books_base" ORDERS_THREADS="$threads"
  pid=$started_pid
  url=http://127.0.0.1:$started_port
  script=$here/create-order.lua
fi

wrk -t2 -c64 -d3s -s "$script" "$url" >/dev/null # warm-up
perf record -g -o "$here/results/perf-$target.data" -p "$pid" -- sleep "$duration" \
  2>"$tmp/perf.err" &
perf_pid=$!
wrk -t2 -c64 -d"${duration}s" -s "$script" "$url" >"$tmp/wrk.txt"
wait "$perf_pid" || { cat "$tmp/perf.err" >&2; die "perf record failed"; }
set +o pipefail # head ends the reports early
{
  echo "bench/profile.sh $target, $threads loop(s), ${duration}s of wrk -t2 -c64"
  grep -E "Requests/sec|Latency" "$tmp/wrk.txt"
  echo
  echo "== self"
  perf report -i "$here/results/perf-$target.data" --no-children --sort symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -40
  echo
  echo "== with children"
  perf report -i "$here/results/perf-$target.data" --children --sort symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]' | head -60
  if command -v strace >/dev/null; then
    echo
    echo "== system calls per request (strace -c -f, 3 s of the same load)"
    timeout -s INT 3 strace -c -f -p "$pid" -o "$tmp/strace.txt" &
    strace_pid=$!
    wrk -t2 -c64 -d3s -s "$script" "$url" >"$tmp/wrk-strace.txt"
    wait "$strace_pid" || true
    reqs=$(awk '$1 ~ /^[0-9]+$/ && $2 == "requests" { print $1 }' "$tmp/wrk-strace.txt")
    awk -v n="${reqs:-0}" 'NR <= 2 || /^-/ { print; next }
      $4 ~ /^[0-9]+$/ && n > 0 { printf "%s  (%.2f per request)\n", $0, $4 / n; next } { print }' \
      "$tmp/strace.txt"
    echo "($reqs requests under strace)"
  fi
} >"$out"
log "profile: $out"
