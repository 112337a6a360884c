#!/usr/bin/python3
"""Runs the library's pytest suite for meson test.

pytest exits 0 when every collected test was skipped, and 5 when it
collected none; either would let a broken set-up pass silently.  This runner
fails both: it exits 0 only when pytest does and at least MIN_PASSED tests
passed and none was skipped."""
import os
import sys

import pytest

MIN_PASSED = 20  # fewer means tests went missing (a collection or import problem)


class Count:
    def __init__(self):
        self.passed = self.skipped = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        if report.skipped:
            self.skipped += 1


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    count = Count()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "console_output_style=classic",
                      "--rootdir", here] + (sys.argv[1:] or [here]), plugins=[count])
    if rc == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("run_pytest: no tests ran", file=sys.stderr)
        return 1
    if rc == 0 and (count.passed < MIN_PASSED and not sys.argv[1:] or count.skipped):
        print("run_pytest: %d passed, %d skipped: expected at least %d passed and none skipped"
              % (count.passed, count.skipped, MIN_PASSED), file=sys.stderr)
        return 1
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
