#!/bin/bash
# Build the Debian packages from the current tree (tracked and untracked
# files, not ignored ones) in a scratch copy, then run lintian on them.
#
#   tests/packaging/build-debs.sh OUT_DIR
#
# OUT_DIR receives the .deb files, the .changes file and lintian.txt. The
# exit status is non-zero when the build fails or lintian reports an error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:?usage: build-debs.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/bookstore"
(cd "$root" && git ls-files -z --cached --others --exclude-standard \
  | xargs -0 cp --parents -t "$work/bookstore")
(cd "$work/bookstore" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
  tail -n 40 "$out/build.log" >&2
  echo "build-debs: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 1
}
rm -f "$out"/*.deb
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
# lintian: errors fail; warnings must be fixed or overridden in debian/
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$out"/*.changes \
  >"$out/lintian.txt" 2>&1 || { cat "$out/lintian.txt" >&2; exit 1; }
cat "$out/lintian.txt"
ls -1 "$out"/*.deb
