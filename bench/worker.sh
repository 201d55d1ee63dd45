#!/bin/bash
# Benchmark bookstore-worker against the seed's worker stack (BullMQ on
# Node.js) on the same work: N orders, no-delay steps, the same concurrency.
#
#   bench/worker.sh
#
# For each concurrency and run, and for each worker in turn:
#   1. starts a fresh redis-server on a free loopback port (--save ''
#      --appendonly no);
#   2. enqueues JOBS order.created jobs before any worker runs (bench/bullmq/
#      enqueue.js): for ours, entries on bookstore:orders:events as the orders
#      relay writes them; for BullMQ, jobs on its queue process-order with the
#      seed's job options (removeOnComplete 100, removeOnFail 50, attempts 3);
#   3. starts the poller, bench/bullmq/wait.js (the same for both), then the
#      worker under /usr/bin/time -v with WORKER_CONCURRENCY=C and
#      WORKER_STEP_DELAY_MS=0: $BOOKSTORE_BUILD_DIR/workers/bookstore-worker,
#      or node bench/bullmq/worker.js, which does the same Redis work per
#      order (GET the done key, XADD processing and completed to
#      bookstore:orders:status, SET the done key, queue a notification that
#      its second worker consumes) and writes the same log records, one JSON
#      line each, on stderr (to a file);
#   4. times it from the worker's launch to the moment the poller sees every
#      order and every notification finished (ours: pending 0 and lag 0 of
#      the group on both streams; BullMQ: nothing waiting or active on either
#      queue, N notifications), and takes the CPU time the worker and Redis
#      used until then from /proc;
#   5. checks the effects (2N status entries, N done keys, N notifications, no
#      failed or dead-lettered job; ours: its /metrics counters), stops the
#      worker with SIGTERM and reads its peak RSS (Maximum resident set size)
#      from /usr/bin/time -v.
# Runs are interleaved (ours, BullMQ, ours, ...) so that other load on the
# machine falls on both. Prints per-run lines and a summary table (median and
# range); both also go to bench/results/worker-latest.txt, and the Redis
# commands per order (INFO commandstats) to worker-latest-raw.txt.
#
# BullMQ and ioredis are the versions pinned in bench/bullmq/package-lock.json
# (the seed's), installed with npm ci into BENCH_CACHE_DIR, not into the
# repository.
#
# Environment:
#   JOBS                 orders per run (default 20000)
#   RUNS                 runs per worker and concurrency (default 3)
#   CONCURRENCY          concurrencies to measure, space-separated (default "5 50")
#   WORKERS              which workers, in order (default "ours bullmq")
#   BOOKSTORE_BUILD_DIR  meson build directory (default: build/ in the repo)
#   BENCH_CACHE_DIR      where node_modules goes (default
#                        ${XDG_CACHE_HOME:-~/.cache}/bookstore-bench)
#   BENCH_TIMEOUT_S      give up on a run after this long (default 600)
#   BULLMQ_REMOVE_ON_COMPLETE
#                        overrides the seed's removeOnComplete (100): a number,
#                        true or false
#
# A benchmark, not a test: it exits 0 whatever the numbers, and non-zero when
# something failed (a worker that died or did not finish, a missing or extra
# effect, a failed job).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"
jobs=${JOBS:-20000}
runs=${RUNS:-3}
read -r -a concurrencies <<<"${CONCURRENCY:-5 50}"
read -r -a workers <<<"${WORKERS:-ours bullmq}"
build_dir=${BOOKSTORE_BUILD_DIR:-$root/build}
cache_dir=${BENCH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bookstore-bench}
export BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-600}
results_dir=$here/results
bullmq_dir=$here/bullmq

[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, not '$jobs'"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
[[ $BENCH_TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || die "BENCH_TIMEOUT_S must be a positive integer"
((${#concurrencies[@]} > 0)) || die "CONCURRENCY is empty"
for c in "${concurrencies[@]}"; do
  if [[ ! $c =~ ^[1-9][0-9]*$ ]] || ((c > 1000)); then
    die "CONCURRENCY: '$c' is not in 1..1000"
  fi
done
((${#workers[@]} > 0)) || die "WORKERS is empty"
for w in "${workers[@]}"; do
  [[ $w == ours || $w == bullmq ]] || die "WORKERS: '$w' is neither ours nor bullmq"
done
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
worker_bin=$build_dir/workers/bookstore-worker
if [[ " ${workers[*]} " == *" ours "* ]]; then
  [[ -x $worker_bin ]] || die "$worker_bin not found: build first (ninja -C ${build_dir#"$root"/} workers/bookstore-worker)"
fi

# ---- tools -------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v curl >/dev/null || missing+=(curl)
[[ -x /usr/bin/time ]] || missing+=(time)
bench_install "${missing[@]}"

# ---- BullMQ: npm ci into the cache, keyed by the lock file ------------------------
lock_sum=$(sha256sum "$bullmq_dir/package-lock.json" | cut -c1-16)
modules_dir=$cache_dir/bullmq-$lock_sum
if [[ ! -f $modules_dir/installed ]]; then
  log "npm ci of bench/bullmq/package-lock.json into $modules_dir"
  mkdir -p "$cache_dir"
  staging=$(mktemp -d "$cache_dir/staging.XXXXXX")
  cp "$bullmq_dir/package.json" "$bullmq_dir/package-lock.json" "$staging/"
  if ! (cd "$staging" && npm ci --omit=dev --no-audit --no-fund >npm.log 2>&1); then
    cat "$staging/npm.log" >&2
    rm -rf "$staging"
    die "npm ci failed"
  fi
  touch "$staging/installed"
  rm -rf "$modules_dir"
  mv "$staging" "$modules_dir"
fi
export NODE_PATH=$modules_dir/node_modules
bullmq_version=$(node -p "require('bullmq/package.json').version")
ioredis_version=$(node -p "require('ioredis/package.json').version")

# ---- cleanup of everything started: see lib.sh ---------------------------------
bench_init worker-bench

# ---- Redis -----------------------------------------------------------------------
redis_pid=
redis_port=
rcli() { redis-cli -h 127.0.0.1 -p "$redis_port" "$@"; }

# A fresh redis-server in its own directory on a free loopback port; its
# address is exported for the node scripts.
redis_start() {
  local dir=$tmp/redis-$1
  mkdir -p "$dir"
  for _ in 1 2 3 4 5; do
    redis_port=$(pick_port) || die "no free port"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize no --protected-mode no --dir "$dir" --logfile "$dir/redis.log" </dev/null &
    redis_pid=$!
    bench_pids+=("$redis_pid")
    for _ in $(seq 100); do
      kill -0 "$redis_pid" 2>/dev/null || break
      if [[ $(rcli ping 2>/dev/null) == PONG ]]; then
        export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
        return 0
      fi
      sleep 0.05
    done
    bench_stop "$redis_pid"
  done
  die "redis-server did not start: $(tail -n 5 "$dir/redis.log")"
}

# ---- one run ---------------------------------------------------------------------
now_ms() { date +%s%3N; }
# time_field FILE LABEL: a value from /usr/bin/time -v's report.
time_field() { awk -F': ' -v k="$2" '$1 ~ "^[[:space:]]*" k "$" { print $2 }' "$1"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

failures=()
records=() # see "per run" in the summary

# run_one WORKER CONCURRENCY RUN
run_one() {
  local kind=$1 c=$2 i=$3 name=$1-c$2-$3 mode metrics_port='' time_pid pid=''
  local start_ms first_ms done_ms wait_pid ticks_before machine redis_cpu_before redis_cpu_after
  local worker_cpu wall rate steady redis_cpu first rss status_entries done_keys notified count
  local problems=() q
  local timefile=$tmp/$name.time logfile=$tmp/$name.log pidfile=$tmp/$name.pid waitfile=$tmp/$name.wait

  redis_start "$name"
  [[ $kind == ours ]] && mode=streams || mode=bullmq
  node "$bullmq_dir/enqueue.js" "$mode" "$jobs" || die "$name: enqueue failed"
  if [[ $kind == ours ]]; then
    [[ $(rcli xlen bookstore:orders:events) == "$jobs" ]] || die "$name: enqueued $(rcli xlen bookstore:orders:events) events"
  else
    [[ $(rcli llen bull:process-order:wait) == "$jobs" ]] || die "$name: enqueued $(rcli llen bull:process-order:wait) jobs"
  fi

  # the poller first, so that it sees the worker's first status
  node "$bullmq_dir/wait.js" "$mode" "$jobs" "$pidfile" >"$waitfile" &
  wait_pid=$!
  bench_pids+=("$wait_pid")
  for _ in $(seq 500); do
    grep -q '^ready$' "$waitfile" && break
    kill -0 "$wait_pid" 2>/dev/null || die "$name: wait.js failed"
    sleep 0.02
  done
  grep -q '^ready$' "$waitfile" || die "$name: wait.js did not connect to Redis"

  rcli config resetstat >/dev/null # INFO commandstats: the run only, not the enqueue
  ticks_before=$(cpu_ticks)
  redis_cpu_before=$(bench_cpu_seconds "$redis_pid")
  start_ms=$(now_ms)
  if [[ $kind == ours ]]; then
    metrics_port=$(pick_port) || die "no free port"
    env WORKER_CONCURRENCY="$c" WORKER_STEP_DELAY_MS=0 WORKER_METRICS_PORT="$metrics_port" \
      WORKER_NAME=bench-worker ORDERS_API_URL=http://127.0.0.1:9 \
      /usr/bin/time -v -o "$timefile" "$worker_bin" 2>"$logfile" </dev/null &
  else
    env WORKER_CONCURRENCY="$c" WORKER_STEP_DELAY_MS=0 WORKER_NAME=bench-worker \
      /usr/bin/time -v -o "$timefile" node "$bullmq_dir/worker.js" 2>"$logfile" </dev/null &
  fi
  time_pid=$!
  bench_pids+=("$time_pid")
  for _ in $(seq 500); do
    pid=$(ps -o pid= --ppid "$time_pid" | tr -d ' ') || true
    [[ -n $pid ]] && break
    kill -0 "$time_pid" 2>/dev/null || break
    sleep 0.002
  done
  [[ -n $pid ]] || die "$name: the worker did not start: $(tail -n 5 "$logfile")"
  bench_pids+=("$pid")
  echo "$pid" >"$pidfile"

  wait "$wait_pid" || die "$name: the worker did not finish: $(tail -n 5 "$logfile")"
  bench_forget "$wait_pid"
  redis_cpu_after=$(bench_cpu_seconds "$redis_pid")
  worker_cpu=$(bench_cpu_seconds "$pid")
  machine=$(cpu_shares "$ticks_before" "$(cpu_ticks)")
  first_ms=$(sed -n 's/.*first_ms=\([0-9]*\).*/\1/p' "$waitfile")
  done_ms=$(sed -n 's/.*done_ms=\([0-9]*\).*/\1/p' "$waitfile")

  # the effects, all of them, once each
  status_entries=$(rcli xlen bookstore:orders:status)
  done_keys=$(rcli --scan --pattern 'bookstore:orders:done:*' | wc -l)
  ((status_entries == 2 * jobs)) || problems+=("$status_entries status entries, not $((2 * jobs))")
  ((done_keys == jobs)) || problems+=("$done_keys done keys, not $jobs")
  if [[ $kind == ours ]]; then
    notified=$(rcli xlen bookstore:notifications)
    [[ $(rcli exists bookstore:orders:events:dead bookstore:notifications:dead) == 0 ]] \
      || problems+=("dead-lettered entries")
    for q in process-order send-notification; do
      count=$(metric "$metrics_port" "worker_jobs_completed_total{queue=\"$q\"}")
      [[ $count == "$jobs" ]] || problems+=("worker_jobs_completed_total{queue=\"$q\"} is $count")
    done
  else
    notified=$(rcli get bull:send-notification:id)
    for q in process-order send-notification; do
      count=$(rcli zcard "bull:$q:failed")
      [[ $count == 0 ]] || problems+=("$count failed jobs on $q")
    done
  fi
  ((notified == jobs)) || problems+=("$notified notifications, not $jobs")

  # what the worker asked of Redis (the last run of each kind and concurrency
  # is kept for the raw results)
  rcli info commandstats >"$tmp/commandstats-$kind-c$c.txt"

  bench_stop "$pid"
  wait "$time_pid" || true
  bench_forget "$time_pid"
  bench_stop "$redis_pid"
  rss=$(time_field "$timefile" 'Maximum resident set size \(kbytes\)')
  [[ $rss =~ ^[0-9]+$ ]] || die "$name: no peak RSS in /usr/bin/time's report: $(cat "$timefile")"
  grep -q 'Exit status: 0' "$timefile" || problems+=("exit: $(grep -E 'Exit status|signal' "$timefile" | xargs)")
  ((${#problems[@]} == 0)) || failures+=("$name: ${problems[*]}")

  wall=$(awk -v a="$start_ms" -v b="$done_ms" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
  rate=$(awk -v w="$wall" -v n="$jobs" 'BEGIN { printf "%.0f", n / w }')
  steady=$(awk -v a="$first_ms" -v b="$done_ms" -v n="$jobs" \
    'BEGIN { printf "%.0f", (b > a) ? n / ((b - a) / 1000) : 0 }')
  redis_cpu=$(awk -v a="$redis_cpu_before" -v b="$redis_cpu_after" 'BEGIN { printf "%.2f", b - a }')
  first=$((first_ms - start_ms))
  records+=("$kind $c $i $wall $rate $steady $rss $worker_cpu $redis_cpu $first $(wc -l <"$logfile") ${machine%%,*}")
  log "$(printf '%-6s c=%-4s run %s: %8s s  %6s orders/s  (%6s/s after the first)  peak RSS %7s kB' \
    "$kind" "$c" "$i" "$wall" "$rate" "$steady" "$rss")  CPU $worker_cpu s  Redis CPU $redis_cpu s" \
    " first status after $first ms  $machine"
  rm -f "$logfile"
}

# ---- the runs ----------------------------------------------------------------------
loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
for c in "${concurrencies[@]}"; do
  for ((i = 1; i <= runs; i++)); do
    for kind in "${workers[@]}"; do
      run_one "$kind" "$c" "$i"
    done
  done
done

# ---- summary -------------------------------------------------------------------------
# stat WORKER C COLUMN: "median (min–max)" of that column over the runs.
stat() {
  printf '%s\n' "${records[@]}" | awk -v w="$1" -v c="$2" -v k="$3" '$1 == w && $2 == c { print $k }' \
    | sort -g | awk '{ v[NR] = $1 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      if (NR == 1) printf "%s", v[1]; else printf "%s (%s-%s)", m, v[1], v[NR] }'
}
label() { [[ $1 == ours ]] && echo "bookstore-worker" || echo "BullMQ $bullmq_version"; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- 2>/dev/null || revision="$revision (with uncommitted changes)"
mkdir -p "$results_dir"
{
  echo "Worker benchmark: bookstore-worker vs BullMQ, $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  echo "machine:   $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r); load average before: $loadavg"
  echo "software:  $worker_bin at $revision; node $(node --version), bullmq $bullmq_version, ioredis $ioredis_version;" \
    "$(redis-server --version | cut -d' ' -f1-3)"
  echo "setup:     $jobs orders enqueued before each worker starts; no-delay steps; $runs runs each," \
    "interleaved; a fresh redis-server per run"
  echo
  echo "per run: worker concurrency run wall_s orders/s orders/s_after_first peak_rss_kB worker_cpu_s redis_cpu_s first_status_ms log_lines machine_idle"
  printf '  %s\n' "${records[@]}"
  echo
  printf '| %-18s | %5s | %-22s | %-22s | %-26s | %-22s | %-22s |\n' worker conc "orders/s" \
    "wall s" "peak RSS kB" "worker CPU s" "Redis CPU s"
  printf '| %-18s | %5s | %-22s | %-22s | %-26s | %-22s | %-22s |\n' --- ---: ---: ---: ---: ---: ---:
  for c in "${concurrencies[@]}"; do
    for kind in "${workers[@]}"; do
      printf '| %-18s | %5s | %-22s | %-22s | %-26s | %-22s | %-22s |\n' "$(label "$kind")" "$c" \
        "$(stat "$kind" "$c" 5)" "$(stat "$kind" "$c" 4)" "$(stat "$kind" "$c" 7)" \
        "$(stat "$kind" "$c" 8)" "$(stat "$kind" "$c" 9)"
    done
  done
  echo "(median (min-max) over $runs runs; orders/s = $jobs orders / wall time from the worker's launch to the"
  echo " last notification done; each order is one process-order job plus one send-notification job)"
  if ((${#failures[@]} > 0)); then
    echo
    printf 'FAILED: %s\n' "${failures[@]}"
  fi
} | tee "$results_dir/worker-latest.txt"
# Redis commands per order, from INFO commandstats after the last run of each
# kind (counted from the worker's start: the poller and the checks included,
# the enqueue not). Commands that a Lua script runs are counted under their
# own names too, and the script's time (evalsha) includes theirs.
{
  for c in "${concurrencies[@]}"; do
    for kind in "${workers[@]}"; do
      echo "== $(label "$kind"), concurrency $c: Redis commands per order (INFO commandstats, last run) =="
      tr -d '\r' <"$tmp/commandstats-$kind-c$c.txt" | awk -F'[:,=]' -v n="$jobs" '/^cmdstat_/ {
          sub(/^cmdstat_/, "", $1)
          printf "  %-22s %10d calls  %6.2f per order  %8.1f us per order\n", $1, $3, $3 / n, $5 / n
          calls += $3 }
        END { printf "  %-22s %10d calls  %6.2f per order\n", "all", calls, calls / n }'
    done
  done
} >"$results_dir/worker-latest-raw.txt"
log "Redis commands per order: $results_dir/worker-latest-raw.txt"
((${#failures[@]} == 0))
