#!/bin/bash
# What an HTTP client alone costs a call: libsoup-3's, under bookstore-orders'
# calls to Books, against Go's net/http, under the Gin Orders peer's.
#
#   bench/client-floor.sh
#
# Builds bench/peers/libsoup-floor.c (the server: a constant JSON body for
# every path), bench/peers/libsoup-client-floor.c and the Go program
# bench/peers/gin/src/bookstore-peers/clientfloor (GOPATH mode, Debian's
# golang-go), starts the server on a free loopback port, then runs ROUNDS
# rounds, interleaved, of each client for DURATION seconds after WARMUP:
#   go-64           net/http, 64 goroutines (the Gin Orders peer's client)
#   soup-64x1       one SoupSession, 64 calls in flight over 64 connections
#   soup-32x1-c16   one SoupSession, 32 calls over 16 connections: what each
#                   of bookstore-orders' two loops does under 64 clients with
#                   BOOKS_MAX_CONNECTIONS=16, the default
#   soup-64x4       64 calls spread over 4 SoupSessions of 16 connections
#   soup-32x2-c8    32 calls over 2 SoupSessions of 8 connections
# and prints, per client, the medians of calls a second and of the CPU (user
# + system) of the client's own process per call. Nothing else runs: no JSON,
# no database. The summary goes to bench/results/client-floor-latest.txt.
#
# Environment: DURATION (default 8), ROUNDS (default 5), WARMUP (default 2).
# Missing Debian packages are installed when run as root (gcc, pkg-config,
# libsoup-3.0-dev, golang-go). A benchmark, not a test: it exits 0 whatever
# the numbers, non-zero if a client failed a call.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"

duration=${DURATION:-8}
rounds=${ROUNDS:-5}
warmup=${WARMUP:-2}
[[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$duration'"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$rounds'"
[[ $warmup =~ ^[1-9][0-9]*$ ]] || die "WARMUP must be a positive integer, not '$warmup'"
peers=$here/peers
clients=(go-64 soup-64x1 soup-32x1-c16 soup-64x4 soup-32x2-c8)

missing=()
command -v gcc >/dev/null || missing+=(gcc)
command -v go >/dev/null || missing+=(golang-go)
pkg-config --exists libsoup-3.0 2>/dev/null || missing+=(pkg-config libsoup-3.0-dev)
bench_install "${missing[@]}"

bench_init client-floor
mkdir -p "$tmp/bin"
for program in libsoup-floor libsoup-client-floor; do
  # shellcheck disable=SC2046 # pkg-config's flags are words
  gcc -O2 -g -o "$tmp/bin/$program" "$peers/$program.c" $(pkg-config --cflags --libs libsoup-3.0) \
    || die "gcc of $program.c failed"
done
GO111MODULE=off GOPATH="$peers/gin" GOCACHE="$tmp/go-build" GOFLAGS="" \
  go build -o "$tmp/bin/go-client-floor" bookstore-peers/clientfloor \
  || die "go build of bookstore-peers/clientfloor failed"

bench_start_daemon server "$tmp/server.log" "$tmp/bin/libsoup-floor"
url=http://127.0.0.1:$started_port/v1/books/5000
log "server: pid $started_pid on $url"

# Each client: its program and settings.
declare -A client_cmd=(
  [go-64]="go-client-floor CONCURRENCY=64"
  [soup-64x1]="libsoup-client-floor CONCURRENCY=64"
  [soup-32x1-c16]="libsoup-client-floor CONCURRENCY=32 MAX_CONNS=16"
  [soup-64x4]="libsoup-client-floor CONCURRENCY=64 SESSIONS=4"
  [soup-32x2-c8]="libsoup-client-floor CONCURRENCY=32 SESSIONS=2 MAX_CONNS=8"
)

# run CLIENT: one measurement; sets rate (calls/s) and cpu (CPU us/call).
# Called in this shell, not in a subshell, so that die ends the script.
run() {
  local out
  local -a words
  read -r -a words <<<"${client_cmd[$1]}"
  out=$(bench_run env URL="$url" DURATION="$duration" WARMUP="$warmup" "${words[@]:1}" \
    "$tmp/bin/${words[0]}") || die "$1 failed"
  printf '%s\n' "$out" >>"$tmp/raw.txt"
  read -r rate cpu < <(awk '{ for (i = 1; i < NF; i++) {
      if ($i == "calls/s") r = $(i + 1); if ($i == "cpu_us/call") c = $(i + 1) } }
    END { print r, c }' <<<"$out")
}

declare -A rates cpus
for ((round = 1; round <= rounds; round++)); do
  for c in "${clients[@]}"; do
    log "round $round/$rounds: $c"
    run "$c"
    rates[$c]+="$rate "
    cpus[$c]+="$cpu "
  done
done

summary=$(
  printf 'Client floor (bench/client-floor.sh), %s\n' "$(date -u +%FT%TZ)"
  printf 'machine:  %s CPUs, %s\n' "$(nproc)" "$(uname -sr)"
  printf 'software: libsoup %s; %s\n' "$(pkg-config --modversion libsoup-3.0)" "$(go version | cut -d' ' -f3)"
  printf 'setup:    GET of a %s-byte constant body from bare libsoup-3, %s rounds of %ss interleaved after %ss warm-up each\n' \
    "$(curl -s "$url" | wc -c)" "$rounds" "$duration" "$warmup"
  printf '%-16s %10s %14s   %s\n' client 'calls/s' 'CPU us/call' 'CPU us/call, every round'
  for c in "${clients[@]}"; do
    printf '%-16s %10s %14s   %s\n' "$c" "$(bench_median <<<"${rates[$c]}")" "$(bench_median <<<"${cpus[$c]}")" "${cpus[$c]}"
  done
)
mkdir -p "$here/results"
printf '%s\n' "$summary" | tee "$here/results/client-floor-latest.txt"
