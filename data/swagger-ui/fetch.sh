#!/bin/bash
# Install the pinned Swagger UI (package.json, package-lock.json: versions and
# integrity hashes) with `npm ci --ignore-scripts` in a work directory, and copy
# the files the API explorer (GET /docs) serves into OUT_DIR.
#
#   data/swagger-ui/fetch.sh OUT_DIR [WORK_DIR]
#
# WORK_DIR (default: a temporary directory, removed at the end) receives
# node_modules; nothing is written next to this script. npm takes the registry
# from the machine's own configuration. meson runs this for -Dswagger_ui.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: fetch.sh OUT_DIR [WORK_DIR]}
work=${2:-}
# what /docs serves (shared/bs-api-explorer.c lists the same names), and the
# licences that go with them
files=(swagger-ui-bundle.js swagger-ui.css swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE)

if [[ -z $work ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$out" "$work"
cp "$here/package.json" "$here/package-lock.json" "$here/.npmrc" "$work/"
# --ignore-scripts: no install script runs (swagger-ui-dist pulls in
# @scarf/scarf, whose install script would report the download)
(cd "$work" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
dist=$work/node_modules/swagger-ui-dist
for f in "${files[@]}"; do
  if [[ ! -f $dist/$f ]]; then
    echo "fetch.sh: swagger-ui-dist has no $f" >&2
    exit 1
  fi
  install -m 0644 "$dist/$f" "$out/$f"
done
