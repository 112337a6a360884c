#!/usr/bin/env bash
# tools/test.sh — the whole test suite: a -Werror build and every meson test
# suite, then the same under AddressSanitizer + UndefinedBehaviorSanitizer,
# bounded fuzzing, and the concurrency tests under ThreadSanitizer.
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
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || status=1

# Bounded fuzzing (needs clang): libFuzzer targets built in build-fuzz with
# ASan+UBSan, each run FUZZ_SECONDS (default 20) from its seed corpus and past
# finds.  A crash fails the run; the input is left in build-fuzz/fuzz-artifacts/
# and belongs in tests/fuzz/regressions/<name>/ once understood.
fuzz_stage() {
  local dir=build-fuzz secs=${FUZZ_SECONDS:-20}
  if ! command -v clang >/dev/null; then echo "fuzz: clang not found, stage skipped"; return 0; fi
  if [ ! -d "$dir" ]; then
    CC=clang meson setup "$dir" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
      -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
  fi
  ninja -C "$dir"
  local rc=0 h
  for h in json tx note rpc; do
    mkdir -p "$dir/fuzz-corpus/$h" "$dir/fuzz-artifacts/$h"
    local log="$dir/fuzz-artifacts/$h.log" hrc=0
    local seeds=("tests/fuzz/corpus/$h")   # git keeps no empty folder: pass past finds only if any
    [ -d "tests/fuzz/regressions/$h" ] && seeds+=("tests/fuzz/regressions/$h")
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$dir/tests/fuzz/fuzz_$h" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=20000 -print_final_stats=1 \
      -artifact_prefix="$dir/fuzz-artifacts/$h/" "$dir/fuzz-corpus/$h" "${seeds[@]}" >"$log" 2>&1 || hrc=$?
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$hrc" -eq 0 ]; then
      passed=$((passed + 1))
      echo "fuzz $h: ${execs:-?} executions in ${secs}s, no crash"
    else
      failed=$((failed + 1))
      rc=1
      echo "fuzz $h: CRASH after ${execs:-?} executions (exit $hrc); log $log:"
      grep -E 'invariant|ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -20 || true
    fi
  done
  return $rc
}
fuzz_stage || status=1

# ThreadSanitizer: the daemon's threads (workers, sequencer, the writers
# behind it, loop, WAL checkpointer, control work, raft) under the race,
# pipelining, RPC, thread-name, lookup-writer, kill -9 and cluster tests.
# All but the kill -9 test read the daemon's logs and fail on any sanitizer
# report.
# TSAN=0 skips.
if [ "${TSAN:-1}" = 1 ]; then
  if [ ! -d build-tsan ]; then meson setup build-tsan -Dwerror=true -Db_sanitize=thread -Dbuildtype=debug >/dev/null; fi
  ninja -C build-tsan
  for t in integration_concurrency integration_import integration_rpc integration_threads integration_lookups integration_crash integration_cluster integration_cluster_disk; do
    if TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" meson test -C build-tsan --print-errorlogs "$t"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      status=1
    fi
  done
fi

echo "tests: $passed passed, $failed failed"
exit $status
