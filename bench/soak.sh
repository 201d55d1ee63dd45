#!/bin/bash
# The soak: the whole stack (PostgreSQL, Redis, Books, Orders, the worker) under
# mixed traffic for DURATION while faults are injected, then an account of every
# order and job, and of each daemon's memory and descriptors.
#
#   bench/soak.sh [DURATION]      e.g. 30m (the default), 2m, 90s, 1h
#
# What runs and what is checked: bench/soak.py. Results go to
# bench/results/soak-latest/: samples.csv (every 10 s: RSS and descriptors of
# each daemon, Redis used_memory, orders and jobs so far), faults.csv,
# summary.txt, the daemons' logs, and soak.png (gnuplot) with SOAK_PLOT=1.
#
# Environment:
#   BOOKSTORE_BUILD_DIR  meson build directory (default: build/ in the repo)
#   SOAK_PLOT            1: draw soak.png (installs gnuplot-nox when root)
#   SOAK_OUT             where the results go (default bench/results/soak-latest)
#
# Exits 1 when an account check failed, 2 on a usage error. Needs root (the
# harness runs PostgreSQL as user postgres), like the integration tests.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$here/lib.sh"

duration=${1:-30m}
case $duration in
  *h) seconds=$((${duration%h} * 3600)) ;;
  *m) seconds=$((${duration%m} * 60)) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$duration ;;
esac
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 60)); then
  echo "usage: bench/soak.sh [DURATION]   (at least 60 s: 2m, 30m, 1h, 90s)" >&2
  exit 2
fi
out=${SOAK_OUT:-$here/results/soak-latest}
export BOOKSTORE_BUILD_DIR=${BOOKSTORE_BUILD_DIR:-$root/build}

rm -rf "$out"
mkdir -p "$out"
status=0
/usr/bin/python3 "$here/soak.py" "$seconds" "$out" || status=$?

if [[ ${SOAK_PLOT:-0} == 1 && -s $out/samples.csv ]]; then
  command -v gnuplot >/dev/null || bench_install gnuplot-nox
  arrows=$(awk -F, 'NR > 1 { printf "set arrow from %s, graph 0 to %s, graph 1 nohead dashtype 2 lc rgb \"#999999\"; ", $1, $1 }' \
    "$out/faults.csv")
  gnuplot -e "samples='$out/samples.csv'; faults='$out/faults.csv'; output='$out/soak.png'; arrows='$arrows'" \
    "$here/soak.gp"
  log "plot: $out/soak.png"
fi
exit "$status"
