#!/bin/bash
# What one Prometheus scrape of GET /metrics costs each service.
#
#   ./dev.sh up && bench/scrape.sh [SECONDS]
#
# Against the running dev stack (books :8001, orders :8082, worker :9100, or
# BOOKSTORE_ORDERS_PORT / BOOKSTORE_WORKER_PORT as dev.sh uses them): for each,
# the size of the exposition (bytes, samples), then wrk with one connection
# for SECONDS (default 10) asking for /metrics back to back, and the CPU the
# daemon used meanwhile (from /proc/PID/stat). Prints one Markdown table row
# per service: scrapes/s, p50 and p99 latency, CPU ms per scrape, and the
# daemon's VmRSS after.
set -euo pipefail

secs=${1:-10}
targets=(books:8001 "orders:${BOOKSTORE_ORDERS_PORT:-8082}" "worker:${BOOKSTORE_WORKER_PORT:-9100}")
command -v wrk >/dev/null || { echo "bench/scrape.sh: wrk is missing (apt-get install wrk)" >&2; exit 1; }

listener_pid() { # the pid listening on 127.0.0.1:PORT
  ss -Hltnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}
cpu_ticks() { # utime + stime of PID, in clock ticks
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
wrk_ms() { # wrk_ms LABEL < wrk output: the latency percentile in ms
  awk -v p="$1" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 }
    else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }
    printf "%.2f", v }'
}

hz=$(getconf CLK_TCK)
printf '| service | bytes | samples | scrapes/s | p50 ms | p99 ms | CPU ms/scrape | VmRSS |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for t in "${targets[@]}"; do
  name=${t%%:*} port=${t#*:}
  url=http://127.0.0.1:$port/metrics
  pid=$(listener_pid "$port")
  [[ -n $pid ]] || { echo "bench/scrape.sh: nothing listens on :$port (./dev.sh up?)" >&2; exit 1; }
  body=$(curl -sf "$url")
  bytes=$(printf '%s\n' "$body" | wc -c)
  samples=$(printf '%s\n' "$body" | grep -vc '^#')
  before=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c1 -d"${secs}s" --latency "$url")
  after=$(cpu_ticks "$pid")
  requests=$(awk '/requests in/ { print $1 }' <<<"$out")
  rate=$(awk '/Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")
  cpu_ms=$(awk -v d=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.3f", d * 1000 / hz / n }')
  rss=$(awk '/VmRSS/ { print $2 " " $3 }' "/proc/$pid/status")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$bytes" "$samples" "$rate" \
    "$(wrk_ms 50% <<<"$out")" "$(wrk_ms 99% <<<"$out")" "$cpu_ms" "$rss"
done
