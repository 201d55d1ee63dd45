#!/bin/bash
# Check the installed systemd units without booting anything:
#   - systemd-analyze verify: no unknown keys or sections, nothing unparsable;
#   - systemd-analyze security --offline: exposure at most 1.0 per service (issue 14);
#   - every unit the packages ship is installed, and the worker template also
#     passes both checks as a real instance (bookstore-worker@2.service).
#
#   tests/systemd/check-units.sh [BUILD_DIR]
#
# BUILD_DIR (default build/) is installed with DESTDIR into a temp dir first, so
# the units checked are the generated ones, with their real paths.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-${BOOKSTORE_BUILD_DIR:-$root/build}}
threshold=10 # tenths: 1.0
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

if ! out=$(meson install -C "$build" --no-rebuild --destdir "$dest" 2>&1); then
  tail -n 20 <<<"$out" >&2
  echo "check-units: meson install from $build failed (build it first)" >&2
  exit 1
fi
unitdir=$(find "$dest" -type f -name 'bookstore-books.service' -printf '%h\n' | head -n 1)
[[ -n $unitdir ]] || { echo "check-units: no units installed from $build" >&2; exit 1; }

expected=(bookstore.target bookstore-books.service bookstore-books.socket
  bookstore-orders.service bookstore-orders.socket bookstore-worker.service
  bookstore-worker@.service)
status=0
for name in "${expected[@]}"; do
  [[ -f $unitdir/$name ]] || { echo "FAIL $name is not installed"; status=1; }
done

# a template is checked as the placeholder instance bookstore-worker@i; check a
# real one too, found through the unit path like systemctl would
instdir=$dest/instance
mkdir "$instdir"
cp "$unitdir/bookstore-worker@.service" "$instdir/"
cp "$unitdir/bookstore-worker@.service" "$instdir/bookstore-worker@2.service"

for unit in "$unitdir"/bookstore* "$instdir/bookstore-worker@2.service"; do
  name=${unit##*/}
  # the binaries are not in / here: ignore only "is not executable"
  out=$(SYSTEMD_UNIT_PATH="${unit%/*}:" systemd-analyze verify --man=no "$unit" 2>&1 |
    grep -v 'is not executable' || true)
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
      echo "FAIL security $name above 1.0:"
      grep -E '✗|Overall' <<<"$exposure" || echo "$exposure"
      status=1
    fi
  fi
done
exit $status
