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

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

[[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer, not '$duration'"
[[ $warmup =~ ^[0-9]+$ ]] || die "WARMUP must be an integer, not '$warmup'"
[[ $pool_size =~ ^[1-9][0-9]*$ ]] || die "BOOKS_DB_POOL_SIZE must be a positive integer"
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
daemon=$build_dir/books/bookstore-books
[[ -x $daemon ]] || die "$daemon not found: build first (meson setup build && ninja -C build)"

if [[ -z ${PG_BINDIR:-} ]]; then
  PG_BINDIR=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null \
    | sort -V | tail -n 1) || true
fi
[[ -n $PG_BINDIR && -x $PG_BINDIR/initdb ]] \
  || die "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)"

# ---- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
[[ -x $PG_BINDIR/pgbench ]] || command -v pgbench >/dev/null || missing+=(postgresql-contrib)
if ((${#missing[@]} > 0)); then
  ((EUID == 0)) || die "missing ${missing[*]}: apt-get install -y ${missing[*]}"
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null; }
fi
pgbench=$PG_BINDIR/pgbench
[[ -x $pgbench ]] || pgbench=$(command -v pgbench)
psql=$PG_BINDIR/psql
[[ -x $psql ]] || psql=$(command -v psql)

# ---- cleanup of everything started -------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-bench.XXXXXX")
daemon_pid=
pg_started=

# PostgreSQL refuses to run as root: run its server binaries as postgres then.
as_pg() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$daemon_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_started ]]; then
    as_pg "$PG_BINDIR/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((EUID == 0)); then
  chown postgres: "$tmp"
fi

# A port nobody answers on; the caller retries if it is taken after all.
pick_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# ---- PostgreSQL --------------------------------------------------------------
log "PostgreSQL: initdb in $tmp/data ($PG_BINDIR)"
as_pg "$PG_BINDIR/initdb" -D "$tmp/data" -A trust -U postgres -E UTF8 --no-sync \
  >"$tmp/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$tmp/initdb.log")"
pg_port=
for _ in 1 2 3 4 5; do
  pg_port=$(pick_port) || die "no free port"
  if as_pg "$PG_BINDIR/pg_ctl" -D "$tmp/data" -l "$tmp/postgresql.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $tmp -c max_connections=200 -c fsync=off -c synchronous_commit=off" \
    start >/dev/null 2>&1; then
    pg_started=1
    break
  fi
  pg_port=
done
[[ -n $pg_port ]] || die "PostgreSQL did not start: $(tail -n 5 "$tmp/postgresql.log")"

sql() {
  "$psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -c "$2"
}
sql postgres "CREATE DATABASE $database" >/dev/null
log "PostgreSQL: listening on 127.0.0.1:$pg_port, database $database"

# ---- the daemon ----------------------------------------------------------------
http_port=
for _ in 1 2 3 4 5; do
  http_port=$(pick_port) || die "no free port"
  BOOKS_DB_DSN="postgresql://postgres@127.0.0.1:$pg_port/$database" \
    PORT=$http_port BIND_ADDRESS=127.0.0.1 BOOKS_DB_POOL_SIZE=$pool_size \
    "$daemon" >"$tmp/books.log" 2>&1 </dev/null &
  daemon_pid=$!
  for _ in $(seq 300); do
    kill -0 "$daemon_pid" 2>/dev/null || break
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/health") == 200 ]]; then
      break 2
    fi
    sleep 0.1
  done
  if kill -0 "$daemon_pid" 2>/dev/null; then
    die "bookstore-books did not become healthy in 30 s: $(tail -n 5 "$tmp/books.log")"
  fi
  wait "$daemon_pid" || true
  daemon_pid=
  grep -qi 'address already in use' "$tmp/books.log" \
    || die "bookstore-books exited: $(tail -n 5 "$tmp/books.log")"
done
[[ -n $daemon_pid ]] || die "bookstore-books found no free port"
base=http://127.0.0.1:$http_port
log "bookstore-books: pid $daemon_pid on $base, pool size $pool_size"

# ---- 10,000 books: the first through the API, the rest in SQL -------------------
for body in \
  '{"title":"The Great Gatsby","author":"F. Scott Fitzgerald","price":"12.99"}' \
  '{"title":"1984","author":"George Orwell","price":"15.99"}' \
  '{"title":"Animal Farm","author":"George Orwell","price":"9.50","description":"A fable."}'; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "$body" "$base/v1/books")
  [[ $status == 201 ]] || die "POST /v1/books answered $status"
done
sql "$database" "
  INSERT INTO books (title, author, description, price)
  SELECT 'Book ' || g, 'Author ' || (g % 997),
         CASE WHEN g % 3 = 0 THEN NULL ELSE 'Description of book ' || g END,
         ((g * 37) % 10000) / 100.0
  FROM generate_series(4, $books) AS g" >/dev/null
sql "$database" "VACUUM ANALYZE books" >/dev/null
loaded=$(sql "$database" "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM books WHERE active")
[[ $loaded == "$books 1 $books" ]] || die "expected ids 1..$books, found (count min max) $loaded"
status=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/books/$books")
[[ $status == 200 ]] || die "GET /v1/books/$books answered $status"
log "loaded $books books"

# CPU seconds the daemon has used (user + system), from /proc/PID/stat.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
    "/proc/$daemon_pid/stat"
}
# The machine's aggregate CPU counters: "idle steal total" in ticks.
cpu_ticks() {
  awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $5 + $6, $9, t }' /proc/stat
}
# Idle and steal shares between two cpu_ticks readings: "idle 12%, steal 0%".
cpu_shares() {
  echo "$1 $2" | awk '{ t = $6 - $3; if (t <= 0) t = 1;
    printf "idle %.0f%%, steal %.0f%%", 100 * ($4 - $1) / t, 100 * ($5 - $2) / t }'
}
rss() { awk -v k="$1:" '$1 == k { print $2 " " $3 }' "/proc/$daemon_pid/status"; }
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
