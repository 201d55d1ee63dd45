#!/bin/bash
# Copy Debian packages under another version: the same files and maintainer
# scripts, only the Version (and the "(= version)" relations between the
# packages) changed. An "older build" for upgrade tests, without a second
# dpkg-buildpackage.
#
#   tests/packaging/reversion-debs.sh VERSION OUT_DIR DEB...
#
# OUT_DIR receives PACKAGE_VERSION_ARCH.deb for each DEB.
set -euo pipefail

version=${1:?usage: reversion-debs.sh VERSION OUT_DIR DEB...}
out=${2:?usage: reversion-debs.sh VERSION OUT_DIR DEB...}
shift 2
(($#)) || { echo "reversion-debs: no .deb given" >&2; exit 64; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for deb in "$@"; do
  old=$(dpkg-deb -f "$deb" Version)
  pkg=$(dpkg-deb -f "$deb" Package)
  arch=$(dpkg-deb -f "$deb" Architecture)
  old_re=$(sed 's/[][\\.*^$+?(){}|/]/\\&/g' <<<"$old") # as an ERE
  tree=$work/$pkg
  dpkg-deb -R "$deb" "$tree"
  # Version: OLD -> Version: VERSION; "(= OLD)" -> "(= VERSION)" in relations
  sed -i -E -e "s/^Version: .*/Version: $version/" \
    -e "/^(Pre-)?Depends|^Recommends|^Suggests|^Breaks|^Conflicts|^Replaces/ s/\(= $old_re\)/(= $version)/g" \
    "$tree/DEBIAN/control"
  dpkg-deb --root-owner-group -Zgzip -b "$tree" "$out/${pkg}_${version}_${arch}.deb" >/dev/null
  rm -rf "$tree"
done
ls -1 "$out"/*_"$version"_*.deb
