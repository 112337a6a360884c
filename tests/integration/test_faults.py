#!/usr/bin/python3
"""test_faults.py - an unlucky operator's faults against the real daemon
(issue #12): each must get a clear answer, never a crash, a wedge, or a
silently short reply.

  lock         a second tranched, or `tranched --check`, on a live data
               directory writes nothing and the live node keeps committing
  bad db       tranche.db missing, a directory, garbage, truncated: exit 1
               with the reason, never a signal
  disk full    (a small tmpfs; skipped where mount is not allowed) a tx gets
               "disk full", account.history an error rather than a short
               page, writes recover once room is made, SIGTERM says the last
               writes failed and exits 1, a restart says "disk full"
  WAL gone     truncated under load: writes stop with the reason, reads go
               on, a restart refuses the damaged file
  clock        (libfaketime on the wall clock only) stepped back a day:
               checkpoints keep coming; a year ahead for a moment: entry
               times do not follow it and node.status counts the refusal
Only 127.0.0.1; bounded in time.  Prints TAP.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SANITIZED = bool(os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"))


def skip(why):
    T.check(True, "# SKIP " + why)


def run(args, timeout=30):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def open_account(node, label):
    k = tc.Key()
    r = node.submit(node.tx("account.open", node.admin, account=k.pk, roles=["investor"], jurisdiction="DE",
                            kyc=True), node.admin)
    return k, r


def accepted(r):
    return isinstance(r, dict) and "seq" in r


def db_files_state(datadir):
    """Size and mtime of the database files: a process that writes nothing leaves them as they are."""
    out = {}
    for name in ("tranche.db", "tranche.db-wal", "checkpoint"):
        p = os.path.join(datadir, name)
        if os.path.exists(p):
            st = os.stat(p)
            out[name] = (st.st_size, st.st_mtime_ns)
    return out


# ------------------------------------------------------------------ lock

def case_lock():
    node = tc.Node(workers=1)
    try:
        node.init().start()
        for i in range(5):
            open_account(node, "before %d" % i)
        time.sleep(1.5)  # the idle checkpoint and history rows are written: nothing pending
        before = db_files_state(node.datadir)
        rc, out, err = run([node.tranched, "--datadir", node.datadir, "--listen", "127.0.0.1:%d" % tc.free_port()])
        T.eq(rc, 1, "a second tranched on a live data directory exits 1")
        T.check("in use by pid %d" % node.proc.pid in err, "... saying the directory is in use by the live pid",
                err[-400:])
        rc, out, err = run([node.tranched, "--datadir", node.datadir, "--check"])
        T.eq(rc, 0, "tranched --check beside a live node exits 0")
        T.check(out.startswith("configuration OK") and "in use by pid" in out,
                "--check says the configuration is OK and that a node runs", out + err)
        T.eq(db_files_state(node.datadir), before, "the second tranched and --check wrote nothing")
        oks = [accepted(open_account(node, "after %d" % i)[1]) for i in range(5)]
        T.check(all(oks), "the live node keeps committing afterwards", oks)
        T.check(re.search(r" (seq|derive) +.*failed", node.logs(200)) is None, "the live node logged no failed write",
                node.logs(10))
        T.eq(node.stop(), 0, "the live node stops cleanly")
        rc, out, err = run([node.tranched, "--datadir", node.datadir, "--check"])
        T.check(rc == 0 and "in use" not in out, "--check on a stopped node: OK, nobody holds the directory",
                out + err)
    finally:
        node.cleanup()


# ------------------------------------------------------------------ bad database

def case_bad_database():
    node = tc.Node(workers=1)
    try:
        node.init()
        db = os.path.join(node.datadir, "tranche.db")
        shutil.copyfile(db, db + ".good")
        with open(db, "rb") as f:
            good = f.read()

        def put_back():
            if os.path.isdir(db):
                os.rmdir(db)
            shutil.copyfile(db + ".good", db)

        def garbage():
            with open(db, "wb") as f:
                f.write(os.urandom(len(good)))

        def truncated():
            with open(db, "wb") as f:
                f.write(good[:len(good) // 2])

        def not_a_db():
            with open(db, "wb") as f:
                f.write(b"hello, this is not a database\n" * 200)

        cases = [("missing", lambda: os.remove(db)), ("a directory", lambda: (os.remove(db), os.mkdir(db))),
                 ("random bytes", garbage), ("truncated to half", truncated), ("text", not_a_db)]
        for name, damage in cases:
            put_back()
            for side in ("-wal", "-shm"):
                if os.path.exists(db + side):
                    os.remove(db + side)
            damage()
            for args, what in ((["--listen", "127.0.0.1:%d" % tc.free_port()], "tranched"), (["--check"], "--check")):
                rc, out, err = run([node.tranched, "--datadir", node.datadir] + args)
                T.eq(rc, 1, "tranche.db %s: %s exits 1 (not a signal)" % (name, what))
                T.check(len(err.strip()) > 0 and "not an error" not in err,
                        "tranche.db %s: %s says why" % (name, what), err[-300:])
        put_back()
        node.start()
        T.check(node.head()["size"] >= 1, "with the database put back the node starts and serves")
    finally:
        node.cleanup()


# ------------------------------------------------------------------ disk full

def mount_small_fs(path, size_kb):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_kb, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode == 0


def fill(path, name="filler"):
    """Fills the filesystem of path with one file; returns its name."""
    filler = os.path.join(path, name)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def case_disk_full():
    if os.geteuid() != 0:
        skip("disk full: needs root to mount a small tmpfs")
        return
    mnt = tempfile.mkdtemp(prefix="tranche-full-")
    if not mount_small_fs(mnt, 6 * 1024):
        skip("disk full: mount -t tmpfs is not allowed here")
        os.rmdir(mnt)
        return
    node = tc.Node(workers=1)
    node.datadir = os.path.join(mnt, "data")  # the logs stay on a disk with room
    try:
        node.init().start()
        issuer, r = open_account(node, "issuer")
        T.check(accepted(r), "disk full: an account opens while there is room", r)
        time.sleep(1.3)
        filler = fill(mnt)
        errs = []
        for i in range(40):  # the WAL has slack: write until the disk answers
            _, r = open_account(node, "full %d" % i)
            if not accepted(r):
                errs.append(r)
                break
        T.check(errs and "disk full" in errs[0].get("message", ""), "disk full: a tx gets an error saying disk full",
                errs[:1])
        hist = node.roe("account.history", {"account": issuer.pk})
        T.check(tc.is_error(hist) or (isinstance(hist, dict) and hist.get("size") == node.head()["size"]),
                "disk full: account.history answers an error or a complete page, never a short one", hist)
        T.check("disk full" in node.logs(100), "disk full: the log says disk full", node.logs(5))
        os.remove(filler)
        oks = [accepted(open_account(node, "after %d" % i)[1]) for i in range(3)]
        T.check(all(oks), "disk full: writes recover once room is made", oks)
        filler = fill(mnt)
        for i in range(40):
            if not accepted(open_account(node, "full again %d" % i)[1]):
                break
        rc = node.stop()
        log = node.logs(20)
        T.check(rc == 1 and "stopped cleanly" not in log,
                "disk full: SIGTERM exits 1 and does not claim a clean stop", (rc, log[-500:]))
        # kill -9 with derived rows held in memory (the writer behind gathers batches for
        # TR_DERIVED_LINGER_MS), on a full disk: the restart must rebuild them.  It either refuses
        # saying disk full, or runs: reads are complete or answered with an error saying disk full
        # (never a short answer), and writes are answered with disk full.
        os.remove(filler)
        node.start()
        for i in range(5):
            open_account(node, "before kill %d" % i)
        filler = fill(mnt)
        node.kill()
        try:
            node.start()
            head = node.roe("ledger.head")
            serves = (isinstance(head, dict) and head.get("size", 0) >= 2) or \
                (tc.is_error(head) and "disk full" in head.get("message", ""))
            fill(mnt, "filler2")  # whatever the restart freed
            rs = [open_account(node, "restarted full %d" % i)[1] for i in range(40)]
            r = next((x for x in rs if not accepted(x)), {})
            T.check(serves and "disk full" in r.get("message", ""),
                    "disk full: a restart answers reads (or says disk full) and answers writes with disk full",
                    (head, r))
            node.stop()
        except RuntimeError as e:
            T.check("disk full" in str(e) and "not an error" not in str(e) and "no transaction" not in str(e),
                    "disk full: a restart exits saying disk full", str(e)[-400:])
        for name in ("filler", "filler2"):
            if os.path.exists(os.path.join(mnt, name)):
                os.remove(os.path.join(mnt, name))
        node.start()
        T.check(node.head()["size"] >= 2, "disk full: with room again the node restarts")
        rc, out, err = run([node.tranchectl, "verify", "--datadir", node.datadir], timeout=120) if node.stop() == 0 \
            else (None, "", "")
        T.check(rc == 0, "disk full: the journal verifies afterwards", err[-300:])
    finally:
        node.kill()
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(mnt, ignore_errors=True)
        node.cleanup()


# ------------------------------------------------------------------ clock

def case_clock():
    if not os.path.exists(FAKETIME_LIB):
        skip("clock: libfaketime is not installed")
        return
    if SANITIZED:
        skip("clock: libfaketime is not preloaded under a sanitizer runtime")
        return
    node = tc.Node(workers=1)
    offset_file = os.path.join(node.tmp, "faketime")

    def set_offset(text):
        with open(offset_file + ".new", "w") as f:
            f.write(text + "\n")
        os.replace(offset_file + ".new", offset_file)

    set_offset("+0")
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE", "FAKETIME_NO_CACHE",
                                            "FAKETIME_DONT_FAKE_MONOTONIC")}
    try:
        node.init()
        os.environ.update({"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": offset_file,
                           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        node.start()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _, r = open_account(node, "first")
        T.check(accepted(r), "clock: a tx under libfaketime", r)
        time.sleep(1.2)
        cp0 = node.call("ledger.checkpoint")["size"]

        # Stepped back a day: checkpoints go on every second while the journal grows.
        set_offset("-1d")
        sizes = []
        for i in range(6):
            open_account(node, "back %d" % i)
            time.sleep(0.6)
            sizes.append(node.call("ledger.checkpoint")["size"])
        head = node.head()["size"]
        T.check(sizes[-1] > cp0 and len(set(sizes)) >= 3,
                "clock stepped back a day: checkpoints keep coming while the head grows", (cp0, sizes, head))
        entries = node.all_entries()
        times = [e["time"] for e in entries]
        T.check(times == sorted(times), "clock stepped back: entry times never decrease")

        # A year ahead for a moment, then right again: entry times do not jump.
        set_offset("+0")
        time.sleep(0.3)
        wall_ms = int(time.time() * 1000)
        set_offset("+365d")
        _, r = open_account(node, "ahead")
        set_offset("+0")
        T.check(accepted(r), "clock a year ahead: the tx is still accepted", r)
        entry = node.call("ledger.entry", {"seq": r["seq"]}) if accepted(r) else {}
        T.check(abs(entry.get("time", 0) - wall_ms) < 60 * 60 * 1000,
                "clock a year ahead: the entry time stays near the real time", (entry.get("time"), wall_ms))
        clock = node.call("node.status").get("clock", {})
        T.check(clock.get("refused_readings", 0) >= 1 and clock.get("skew_max_ms") == 60000,
                "node.status counts the refused clock reading against clock_skew_max", clock)
        _, r = open_account(node, "after")
        entry = node.call("ledger.entry", {"seq": r["seq"]}) if accepted(r) else {}
        T.check(abs(entry.get("time", 0) - int(time.time() * 1000)) < 60 * 60 * 1000,
                "clock corrected: later entry times follow the real time", entry.get("time"))
        T.eq(node.stop(), 0, "clock: the node stops cleanly")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        node.cleanup()


# ------------------------------------------------------------------ a WAL truncated under a live node

def case_wal_truncated():
    """Tampering is outside the threat model, but a node must notice its database going bad: it stops taking
    writes (reads go on), node.status says why, and a restart refuses the damaged file."""
    node = tc.Node(workers=2)
    try:
        node.init().start()
        for i in range(50):
            open_account(node, "before %d" % i)
        os.truncate(os.path.join(node.datadir, "tranche.db-wal"), 0)
        refused, deadline = None, time.monotonic() + 10
        while refused is None and time.monotonic() < deadline:
            _, r = open_account(node, "after")
            if not accepted(r):
                refused = r
            time.sleep(0.1)
        T.check(refused is not None and any(w in refused.get("message", "") for w in
                                            ("stopped taking writes", "damaged", "shorter")),
                "WAL truncated: within seconds a write is refused, saying the database is damaged", refused)
        _, r = open_account(node, "after the damage")
        T.check(not accepted(r) and "stopped taking writes" in r.get("message", ""),
                "WAL truncated: later writes are refused, saying the node stopped taking writes", r)
        writes = node.call("node.status").get("writes", {})
        T.check(writes.get("halted") is True and writes.get("reason"), "WAL truncated: node.status says why", writes)
        T.check(isinstance(node.roe("node.status"), dict), "WAL truncated: the node still answers")
        node.kill()
        try:
            node.start()
            T.check(False, "WAL truncated: a restart refuses the damaged database")
        except RuntimeError as e:
            T.check("integrity" in str(e) or "checkpoint" in str(e),
                    "WAL truncated: a restart refuses the damaged database, saying why", str(e)[-300:])
    finally:
        node.cleanup()


CASES = [("lock", case_lock), ("bad database", case_bad_database), ("disk full", case_disk_full),
         ("clock", case_clock), ("WAL truncated", case_wal_truncated)]


def main():
    for name, fn in CASES:
        T.comment("--- " + name)
        T.section(name, fn)
    T.done()


if __name__ == "__main__":
    main()
