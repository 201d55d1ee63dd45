#!/bin/bash
# Two configurations of bookstore-books side by side: the same wrk load
# (GET /v1/books/{random id}, 64 connections) against each in turn, ROUNDS
# interleaved rounds, and per round the requests/s and the CPU each daemon
# spent per request (user + system, from /proc: steadier than requests/s on a
# shared machine).
#
#   bench/books-ab.sh "ACCESS_LOG=all" "ACCESS_LOG=off"
#   bench/books-ab.sh "BOOKS_THREADS=1" "BOOKS_THREADS=2"
#   bench/books-ab.sh "BIN=/tmp/old/books/bookstore-books" "BIN=build/books/bookstore-books"
#
# Each argument is a space-separated list of VAR=value for one daemon (on
# top of BOOKS_DB_POOL_SIZE=16); BIN=path runs that binary instead of the
# build directory's, to compare two builds. Environment: DURATION (s per run, default 8),
# ROUNDS (default 3), BOOKSTORE_BUILD_DIR (default build/), JOURNAL=1: both
# daemons log to a running systemd-journald, as under their unit (stderr a
# journal stream, JOURNAL_STREAM set), and journald's own CPU per request is
# shown too. Needs root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"

(($# == 2)) || die "usage: bench/books-ab.sh \"VAR=a ...\" \"VAR=b ...\""
duration=${DURATION:-8}
rounds=${ROUNDS:-3}
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
books_bin=$build_dir/books/bookstore-books

bench_find_pg_bindir
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
bench_install "${missing[@]}"

journald_pid=
if [[ ${JOURNAL:-0} == 1 ]]; then
  journald_pid=$(pgrep -xo systemd-journal || true)
  [[ -n $journald_pid ]] || die "JOURNAL=1: no systemd-journald running"
  command -v systemd-cat >/dev/null || die "JOURNAL=1: systemd-cat missing"
fi

bench_init books-ab
if [[ -n $journald_pid ]]; then
  # systemd-cat connects stdout and stderr to the journal and execs; the
  # daemon then finds its stream as under a unit
  cat >"$tmp/books-journal" <<WRAP
#!/bin/sh
exec systemd-cat -t bookstore-books-ab sh -c 'JOURNAL_STREAM=\$(stat -L -c %d:%i /proc/self/fd/2) exec "\$0"' "$books_bin"
WRAP
  chmod +x "$tmp/books-journal"
  books_bin=$tmp/books-journal
fi
pg_start
sql postgres "CREATE DATABASE books" >/dev/null
dsn=postgresql://postgres@127.0.0.1:$pg_port/books

declare -a pids bases
for side in 0 1; do
  read -r -a vars <<<"${*:side+1:1}"
  bin=$books_bin
  if [[ ${vars[0]:-} == BIN=* ]]; then
    [[ -z $journald_pid ]] || die "BIN= and JOURNAL=1 do not go together"
    bin=${vars[0]#BIN=}
    vars=("${vars[@]:1}")
  fi
  bench_start_daemon "side$side" "$tmp/side$side.log" "$bin" \
    BOOKS_DB_DSN="$dsn" BOOKS_DB_POOL_SIZE=16 "${vars[@]}"
  pids[side]=$started_pid
  bases[side]=http://127.0.0.1:$started_port
done
bench_load_books "${bases[0]}" books 10000

for side in 0 1; do
  bench_run wrk -t2 -c64 -d3s -s "$here/random-id.lua" "${bases[side]}" >/dev/null
done
printf '%-40s %6s %10s %12s %16s\n' configuration round "req/s" "CPU us/req" "journald us/req"
for ((round = 1; round <= rounds; round++)); do
  for side in 0 1; do
    cpu0=$(bench_cpu_seconds "${pids[side]}")
    j0=0 j1=0
    [[ -z $journald_pid ]] || j0=$(bench_cpu_seconds "$journald_pid")
    bench_run wrk -t2 -c64 -d"${duration}s" -s "$here/random-id.lua" "${bases[side]}" \
      >"$tmp/wrk.txt"
    cpu1=$(bench_cpu_seconds "${pids[side]}")
    [[ -z $journald_pid ]] || j1=$(bench_cpu_seconds "$journald_pid")
    requests=$(sed -n 's/^WRK_RESULT //p' "$tmp/wrk.txt" | tr ' ' '\n' | sed -n 's/^requests=//p')
    awk -v name="${*:side+1:1}" -v r="$round" -v n="$requests" -v c0="$cpu0" -v c1="$cpu1" \
      -v j0="$j0" -v j1="$j1" -v d="$duration" 'BEGIN {
        printf "%-40s %6d %10.0f %12.1f %16.1f\n", name, r, n / d, (c1 - c0) * 1e6 / n, (j1 - j0) * 1e6 / n }'
  done
done
