#!/usr/bin/python3
"""test_bench.py - the benchmarks' instruments (issue #13) on tiny runs: they
print every figure they promise, and the figures add up.  Never a timed test:
rates and ratios are checked for presence and consistency, not size.

  tranche-bench --lean   spawns tranched, every transfer accepted, the
                         client's CPU printed, the per-thread split names
                         tr-loop, tr-seq, tr-derive, tr-verify-0..W-1 (and the group),
                         the threads sum to about the daemon total, and the
                         ratios equal their definitions
  tranche-bench --lean --rate  paced: the rate held, every transfer accepted
  tranche-bench          the default client prints the split too
  ledger-bench           the sequencer's rate / the 1-thread verify rate
  sqlite-floor           the rows land in an `entries` table as the node's
                         schema makes it; µs per row and per batch printed
  --help                 every new option is documented
Only 127.0.0.1; bounded in time.  Prints TAP.
"""
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
TRANCHED, TRANCHECTL = tc.binaries_or_skip(T)
BENCH, LEDGER, FLOOR = (os.environ.get(k) for k in ("TRANCHE_BENCH", "LEDGER_BENCH", "SQLITE_FLOOR"))
if not (BENCH and LEDGER and FLOOR):
    T.skip_all("TRANCHE_BENCH, LEDGER_BENCH and SQLITE_FLOOR must name the built benchmarks")

NUM = r"([0-9]+(?:\.[0-9]+)?)"


def run(args, timeout=180):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def num(pattern, text):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None


def check_split(out, workers, label):
    threads = re.findall(r"^  (tr-[a-z0-9-]+)\s+tid (\d+)\s+" + NUM + " us", out, re.M)
    names = sorted(n for n, _, _ in threads)
    want = sorted(["tr-loop", "tr-seq", "tr-journal", "tr-derive", "tr-lookups", "tr-history"] +
                  ["tr-verify-%d" % i for i in range(workers)] +
                  ["tr-uvpool"] * 4)
    T.eq(names, want, "%s: one line per daemon thread, by its name" % label)
    kernel = re.findall(r"^  tr-[a-z0-9-]+\s+tid \d+\s+" + NUM + r" us  \(kernel " + NUM + r"\)", out, re.M)
    T.check(len(kernel) == len(threads) and all(float(k) <= float(us) + 0.05 for us, k in kernel),
            "%s: each thread's kernel share, within its CPU" % label, out)
    group = re.search(r"^  tr-verify-\*\s+(\d+) threads\s+" + NUM + " us", out, re.M)
    verify_sum = sum(float(us) for n, _, us in threads if n.startswith("tr-verify-"))
    T.check(group and int(group.group(1)) == workers and abs(float(group.group(2)) - verify_sum) < 0.2,
            "%s: tr-verify-* as a group is the sum of the workers" % label, out)
    total = num(r"^  daemon total\s+" + NUM + " us", out)
    alive = num(r"threads alive at the end: " + NUM + " us", out)
    thread_sum = sum(float(us) for _, _, us in threads)
    T.check(total and alive is not None and abs(alive - thread_sum) < 0.5 and total > 0,
            "%s: a daemon total, and the threads' sum beside it" % label, out)
    one = num(r"^one verify: " + NUM + " us CPU", out)
    T.check(one and one > 0, "%s: one verify's CPU measured in the run" % label, out)
    serial = max(float(us) for n, _, us in threads if not n.startswith("tr-verify-"))
    headroom = num(r"^serial headroom " + NUM, out)
    T.check(headroom and serial > 0 and abs(headroom - one / serial) <= 0.011 * max(1, headroom),
            "%s: serial headroom = one verify / the busiest non-verify thread" % label,
            "headroom %r, one %r, busiest %r" % (headroom, one, serial))
    eff = num(r"^efficiency " + NUM, out)
    T.check(eff and abs(eff - one / total) <= 0.011, "%s: efficiency = one verify / the daemon's total" % label,
            "efficiency %r, one %r, total %r" % (eff, one, total))
    busy = num(r"^one verify while \d+ threads verify at once: " + NUM + " us CPU", out)
    busy_eff = num(r"efficiency against it " + NUM, out)
    T.check(busy and busy_eff and abs(busy_eff - busy / total) <= 0.011,
            "%s: one verify's CPU with every thread verifying, and the efficiency against it" % label, out)
    tps = num(r"end-to-end " + NUM + " tx/s", out)
    raw = num(r"raw verify " + NUM + "/s", out)
    e2e = num(r"^end to end " + NUM, out)
    T.check(e2e is not None and tps and raw and abs(e2e - tps / raw) <= 0.011,
            "%s: end to end = tx/s / the raw verify rate of the run" % label, out)


def case_lean():
    rc, out, err = run([BENCH, "--lean", "--txs", "3000", "--conns", "4", "--depth", "32", "--workers", "2",
                        "--verify-seconds", "0.2", "--tranched", TRANCHED, "--tranchectl", TRANCHECTL])
    T.comment(out)
    T.eq(rc, 0, "tranche-bench --lean exits 0")
    T.check("accepted 3000, overloaded 0, refused 0, failed 0" in out, "lean: every transfer accepted", out + err)
    cores = num(r"^client \(lean, one poll loop\): " + NUM + " s CPU over " + NUM, out)
    T.check(cores is not None, "lean: the client's own CPU is printed", out)
    check_split(out, 2, "lean")


def case_lean_paced():
    rc, out, err = run([BENCH, "--lean", "--rate", "1500", "--txs", "1500", "--conns", "3", "--depth", "32",
                        "--workers", "2", "--verify-seconds", "0.2", "--tranched", TRANCHED, "--tranchectl", TRANCHECTL])
    T.eq(rc, 0, "tranche-bench --lean --rate exits 0")
    T.check("accepted 1500, overloaded 0, refused 0, failed 0" in out and ", paced)" in out,
            "lean, paced: every transfer accepted, the run says it was paced", out + err)
    m = re.search(r"^client \(lean, one poll loop\): [0-9.]+ s CPU over " + NUM + " s", out, re.M)
    T.check(m and float(m.group(1)) >= 0.99, "lean, paced: 1,500 txs at 1,500 a second take a second or more", out)
    tps = num(r"end-to-end " + NUM + " tx/s", out)
    T.check(tps and tps <= 1500 * 1.02, "lean, paced: the rate is held (%r tx/s)" % tps, out)
    check_split(out, 2, "lean, paced")


def case_threaded():
    rc, out, err = run([BENCH, "--txs", "2000", "--conns", "2", "--depth", "16", "--workers", "1",
                        "--verify-seconds", "0.2", "--tranched", TRANCHED, "--tranchectl", TRANCHECTL])
    T.eq(rc, 0, "tranche-bench (a thread per connection) exits 0")
    T.check("accepted 2000," in out and "client (a thread per connection)" in out,
            "threaded: accepted and the client's CPU", out + err)
    check_split(out, 1, "threaded, 1 worker")


def case_ledger():
    with tempfile.TemporaryDirectory(prefix="tranche-it-lb-") as d:
        rc, out, err = run([LEDGER, "--entries", "2000", "--batch", "256", "--dir", d, "--verify-seconds", "0.2"])
    T.eq(rc, 0, "ledger-bench exits 0")
    seq = num(r"^sequencer alone: .*: " + NUM + " tx/s", out)
    ratio = num(r"^sequencer alone / 1-thread verify: " + NUM, out)
    m = re.search(r"\(" + NUM + r" tx/s / " + NUM + r" verifies/s on 1 thread", out)
    T.check(seq and ratio and m and abs(ratio - float(m.group(1)) / float(m.group(2))) <= 0.011
            and abs(float(m.group(1)) - seq) < 1, "ledger-bench: its rate / the 1-thread verify rate", out + err)
    rc, _, _ = run([LEDGER, "--entries", "2000", "--no-such-option", "1"])
    T.eq(rc, 2, "ledger-bench: an unknown option is refused")


def case_floor():
    with tempfile.TemporaryDirectory(prefix="tranche-it-floor-") as d:
        rc, out, err = run([FLOOR, "--rows", "1500", "--batch", "100", "--tx-bytes", "300", "--signers", "7",
                            "--dir", d, "--keep"])
        T.eq(rc, 0, "sqlite-floor exits 0", )
        T.check(num(r"^  per row: +" + NUM + " us wall, " + NUM, out) and
                num(r"^  per batch: +" + NUM + " ms wall", out) and "of it COMMIT" in out,
                "sqlite-floor: us per row and per batch, and the COMMIT's share", out + err)
        db = sqlite3.connect(os.path.join(d, "floor.db"))
        try:
            rows = db.execute("SELECT count(*), min(seq), max(seq), min(length(tx)), max(length(tx)), "
                              "count(DISTINCT signer), count(DISTINCT txid) FROM entries").fetchone()
            T.eq(rows, (1500, 1, 1500, 300, 300, 7, 1500), "sqlite-floor: the rows, their sizes and unique txids")
            cols = [r[1] for r in db.execute("PRAGMA table_info(entries)")]
            T.eq(cols, ["seq", "time", "prev", "hash", "txid", "sig", "signer", "tx_id", "tx"],
                 "sqlite-floor: the journal's columns")
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            T.eq(mode, "wal", "sqlite-floor: a WAL database")
        finally:
            db.close()
    for bad in (["--batch", "0"], ["--rows", "10", "--batch", "11"], ["--tx-bytes", "16385"], ["--rows", "x"]):
        rc, _, err = run([FLOOR] + bad)
        T.check(rc == 2 and "usage" in err, "sqlite-floor refuses %s" % " ".join(bad), err)


def case_help():
    _, _, err = run([BENCH, "--help"])
    for opt in ("--lean", "--pid", "--verify-seconds", "serial headroom", "efficiency", "end to end"):
        T.check(opt in err, "tranche-bench --help documents %s" % opt, err)
    T.check("with --rate, paced" in err, "tranche-bench --help documents --lean with --rate", err)
    _, _, err = run([LEDGER, "--help"])
    T.check("--verify-seconds" in err and "1-thread" in err, "ledger-bench --help documents --verify-seconds", err)
    _, _, err = run([FLOOR, "--help"])
    for opt in ("--rows", "--batch", "--tx-bytes", "--signers", "--dir", "--keep"):
        T.check(opt in err, "sqlite-floor --help documents %s" % opt, err)
    rc, _, _ = run([BENCH, "--lean", "--depth", "1025"])
    T.eq(rc, 2, "tranche-bench: --lean with a depth over its bound is refused")


T.section("lean", case_lean)
T.section("lean, paced", case_lean_paced)
T.section("threaded", case_threaded)
T.section("ledger-bench", case_ledger)
T.section("sqlite-floor", case_floor)
T.section("help", case_help)
T.done()
