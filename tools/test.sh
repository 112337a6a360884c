#!/usr/bin/env bash
# tools/test.sh — the whole test suite: a -Werror build and every meson test
# suite, then the same under AddressSanitizer + UndefinedBehaviorSanitizer.
# Prints one closing line "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh

passed=0
failed=0
run_suite() { # build-dir, meson setup options...
  local dir=$1; shift
  if [ ! -d "$dir" ]; then meson setup "$dir" -Dwerror=true "$@" >/dev/null; fi
  ninja -C "$dir"
  local rc=0
  meson test -C "$dir" --print-errorlogs --num-processes 2 || rc=$?
  local log="$dir/meson-logs/testlog.json"
  if [ -f "$log" ]; then
    passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
    failed=$((failed + $(grep -vc '"result": "\(OK\|SKIP\)"' "$log" || true)))
  fi
  return $rc
}

status=0
run_suite build || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || status=1
echo "tests: $passed passed, $failed failed"
exit $status
