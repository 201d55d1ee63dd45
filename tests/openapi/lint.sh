#!/bin/bash
# Lint OpenAPI documents with the pinned Redocly CLI (package.json) and the
# ruleset in redocly.yaml.
#
#   tests/openapi/lint.sh [FILE...]
#
# FILE defaults to books/openapi.json and orders/openapi.json in the repository
# root; relative paths are taken from the current directory. The exit status is
# non-zero if any document has a problem (redocly.yaml makes every rule an
# error).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

files=()
if [[ $# -eq 0 ]]; then
  files=("$root/books/openapi.json" "$root/orders/openapi.json")
else
  for f in "$@"; do
    [[ $f == /* ]] || f="$PWD/$f"
    files+=("$f")
  done
fi
for f in "${files[@]}"; do
  if [[ ! -f $f ]]; then
    echo "lint.sh: no such file: $f" >&2
    exit 2
  fi
done

export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

npx --no-install redocly lint --config "$here/redocly.yaml" --max-problems 1000 "${files[@]}"
