#!/usr/bin/env bash
# tools/explorer-test-deps.sh DIR — installs playwright-core (npm) into DIR for
# the explorer's browser test (tests/integration/test_explorer.py).  Only the
# driver: the browser is Debian's chromium (tools/deps.sh).  Never committed;
# CI starts from a clean clone and the test calls this script.
set -euo pipefail
dir=${1:?usage: explorer-test-deps.sh DIR}
version=1.65.2
if [ -f "$dir/node_modules/playwright-core/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dir/node_modules/playwright-core/package.json"; then
  exit 0
fi
mkdir -p "$dir"
npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "playwright-core@$version" >&2
