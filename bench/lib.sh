# shellcheck shell=bash
# bench/lib.sh: what bench/run.sh and bench/orders.sh share. Source it, don't
# run it:
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$here/lib.sh"
#
# It provides
#   log, die                messages on stderr, prefixed "bench:"
#   bench_find_pg_bindir    sets PG_BINDIR (default: newest /usr/lib/postgresql/*/bin)
#   bench_install           installs missing Debian packages (as root) or dies
#   bench_init NAME         makes the temporary directory $tmp and installs the
#                           EXIT/INT/TERM traps that clean everything up
#   pick_port               prints a loopback port nobody answers on
#   as_pg CMD...            runs CMD as postgres when we are root
#   pg_start                initdb + start PostgreSQL in $tmp/data on a free
#                           loopback port (max_connections: $pg_max_connections,
#                           200 unless the caller set it); sets pg_port
#   sql DATABASE STATEMENT  psql -At against that server as postgres
#   bench_start_daemon NAME LOG BINARY [VAR=VALUE...]
#                           starts BINARY on a free loopback port with that
#                           environment, waits for GET /health to answer 200;
#                           sets started_pid and started_port
#   bench_stop PID          SIGTERM, up to 5 s, then SIGKILL; forgets PID
#   bench_load_books BASE DATABASE N
#                           books 1..N through the API and SQL, checked
#   bench_run CMD...        runs CMD in the background and waits for it, so
#                           that INT/TERM interrupt it (and the traps stop it)
#   bench_rss PID FIELD     "12345 kB" for VmRSS, VmHWM, ... from /proc/PID/status
#   bench_cpu_seconds PID   user + system CPU seconds PID has used
#   bench_pg_cpu_seconds    the same for the PostgreSQL server's processes
#   cpu_ticks, cpu_shares   the machine's idle and steal share between two points
#   bench_median            the median of the numbers on stdin (blank-separated)
#
# Everything started through bench_start_daemon, bench_run and pg_start is stopped, and
# $tmp removed, when the script exits, however it exits.

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Sets PG_BINDIR unless the caller did, and checks initdb is there.
bench_find_pg_bindir() {
  if [[ -z ${PG_BINDIR:-} ]]; then
    PG_BINDIR=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null \
      | sort -V | tail -n 1) || true
  fi
  [[ -n $PG_BINDIR && -x $PG_BINDIR/initdb ]] \
    || die "PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)"
  psql=$PG_BINDIR/psql
  [[ -x $psql ]] || psql=$(command -v psql) || die "psql not found"
}

# bench_install PACKAGE...: apt-get install them (root only), or die saying how.
bench_install() {
  (($# > 0)) || return 0
  ((EUID == 0)) || die "missing $*: apt-get install -y $*"
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; }
}

# ---- cleanup of everything started -------------------------------------------
tmp=
pg_port=
pg_started=
pg_max_connections=${pg_max_connections:-200}
bench_pids=()

bench_init() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if ((EUID == 0)); then
    chown postgres: "$tmp"
  fi
}

# PostgreSQL refuses to run as root: run its server binaries as postgres then.
as_pg() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# bench_stop PID: stop one process we started and forget it (its PID may be
# reused once it is reaped, so the EXIT trap must not signal it again).
bench_stop() {
  local pid=$1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  bench_forget "$pid"
}

bench_forget() {
  local kept=() p
  for p in "${bench_pids[@]}"; do
    [[ $p == "$1" ]] || kept+=("$p")
  done
  bench_pids=("${kept[@]}")
}

# bench_run CMD...: runs CMD (a load generator) as a tracked child and waits
# for it, so that INT or TERM stops it at once through the traps; bash runs a
# trap only once a foreground command has finished.
bench_run() {
  local pid status=0
  "$@" &
  pid=$!
  bench_pids+=("$pid")
  wait "$pid" || status=$?
  bench_forget "$pid"
  return "$status"
}

bench_cleanup() {
  local status=$? i
  trap - EXIT INT TERM
  # newest first: Orders before the Books it calls
  for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do
    bench_stop "${bench_pids[i]}"
  done
  if [[ -n $pg_started ]]; then
    as_pg "$PG_BINDIR/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [[ -z $tmp ]] || rm -rf "$tmp"
  exit "$status"
}

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
# fsync and synchronous_commit are off: a throwaway server whose durability
# does not matter, measuring the services rather than the disk.
pg_start() {
  log "PostgreSQL: initdb in $tmp/data ($PG_BINDIR)"
  as_pg "$PG_BINDIR/initdb" -D "$tmp/data" -A trust -U postgres -E UTF8 --no-sync \
    >"$tmp/initdb.log" 2>&1 || die "initdb failed: $(tail -n 5 "$tmp/initdb.log")"
  pg_port=
  for _ in 1 2 3 4 5; do
    pg_port=$(pick_port) || die "no free port"
    if as_pg "$PG_BINDIR/pg_ctl" -D "$tmp/data" -l "$tmp/postgresql.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $tmp -c max_connections=$pg_max_connections -c fsync=off -c synchronous_commit=off" \
      start >/dev/null 2>&1; then
      pg_started=1
      break
    fi
    pg_port=
  done
  [[ -n $pg_port ]] || die "PostgreSQL did not start: $(tail -n 5 "$tmp/postgresql.log")"
}

sql() {
  "$psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d "$1" -c "$2"
}

# ---- the daemons ---------------------------------------------------------------
started_pid=
started_port=

# bench_start_daemon NAME LOG BINARY [VAR=VALUE...]
# shellcheck disable=SC2034 # started_pid, started_port: for the caller
bench_start_daemon() {
  local name=$1 logfile=$2 binary=$3 port pid
  shift 3
  started_pid=
  started_port=
  for _ in 1 2 3 4 5; do
    port=$(pick_port) || die "no free port"
    env G_SLICE=always-malloc "$@" PORT="$port" BIND_ADDRESS=127.0.0.1 "$binary" >"$logfile" 2>&1 </dev/null &
    pid=$!
    bench_pids+=("$pid")
    for _ in $(seq 300); do
      kill -0 "$pid" 2>/dev/null || break
      if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health") == 200 ]]; then
        started_pid=$pid
        started_port=$port
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      die "$name did not become healthy in 30 s: $(tail -n 5 "$logfile")"
    fi
    bench_stop "$pid"
    grep -qi 'address already in use' "$logfile" \
      || die "$name exited: $(tail -n 5 "$logfile")"
  done
  die "$name found no free port"
}

# bench_load_books BASE_URL DATABASE N: books 1..N, the first three through the
# API (POST /v1/books), the rest in SQL, checked through GET /v1/books/N.
bench_load_books() {
  local base=$1 database=$2 n=$3 body status loaded
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
    FROM generate_series(4, $n) AS g" >/dev/null
  sql "$database" "VACUUM ANALYZE books" >/dev/null
  loaded=$(sql "$database" "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM books WHERE active")
  [[ $loaded == "$n 1 $n" ]] || die "expected ids 1..$n, found (count min max) $loaded"
  status=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/books/$n")
  [[ $status == 200 ]] || die "GET /v1/books/$n answered $status"
  log "loaded $n books"
}

# ---- measurements ----------------------------------------------------------------
bench_rss() { awk -v k="$2:" '$1 == k { print $2 " " $3 }' "/proc/$1/status"; }

# CPU seconds PID has used (user + system), from /proc/PID/stat.
bench_cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
    "/proc/$1/stat"
}
# CPU seconds the PostgreSQL server has used: the postmaster and its current
# children (backends that already exited are not counted).
bench_pg_cpu_seconds() {
  local postmaster pids pid
  postmaster=$(head -n 1 "$tmp/data/postmaster.pid")
  mapfile -t pids < <(ps -o pid= --ppid "$postmaster")
  for pid in "$postmaster" "${pids[@]}"; do
    cat "/proc/${pid// /}/stat" 2>/dev/null || true
  done | awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); t += $12 + $13 }
    END { printf "%.2f", t / hz }'
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
# The median of the numbers on stdin, separated by blanks or newlines; the mean
# of the middle two for an even count.
bench_median() {
  tr -s '[:blank:]' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
