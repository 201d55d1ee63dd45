#!/bin/bash
# Check the installed systemd units without booting anything:
#   - systemd-analyze verify: no unknown keys or sections, nothing unparsable;
#   - systemd-analyze security --offline: exposure at most 2.0 ("OK") per service.
#
#   tests/systemd/check-units.sh [BUILD_DIR]
#
# BUILD_DIR (default build/) is installed with DESTDIR into a temp dir first, so
# the units checked are the generated ones, with their real paths.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-${BOOKSTORE_BUILD_DIR:-$root/build}}
threshold=20 # tenths: 2.0
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --no-rebuild --destdir "$dest" >/dev/null
unitdir=$(find "$dest" -type f -name 'bookstore-books.service' -printf '%h\n' | head -n 1)
[[ -n $unitdir ]] || { echo "check-units: no units installed from $build" >&2; exit 1; }

status=0
for unit in "$unitdir"/bookstore*; do
  name=${unit##*/}
  # the binaries are not in / here: ignore only "is not executable"
  out=$(systemd-analyze verify --man=no "$unit" 2>&1 | grep -v 'is not executable' || true)
  if [[ -n $out ]]; then
    echo "FAIL verify $name:"
    echo "$out"
    status=1
  else
    echo "ok   verify $name"
  fi
  if [[ $name == *.service ]]; then
    if exposure=$(systemd-analyze security --offline=yes --threshold=$threshold "$unit" 2>&1); then
      echo "ok   security $name: $(grep -o 'Overall exposure level.*' <<<"$exposure")"
    else
      echo "FAIL security $name above 2.0:"
      grep -E '✗|Overall' <<<"$exposure" || echo "$exposure"
      status=1
    fi
  fi
done
exit $status
