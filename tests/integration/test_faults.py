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
  disk full under load  (the same tmpfs) the disk fills while eight
               connections keep batches queued behind tr-journal's commit:
               every request is answered, the batches behind the failed
               commit fail with it (when one was queued: timing, so the
               run says which), and with room again every failed tx is
               accepted afresh (none left a trace) while every answered one
               is a duplicate of its own entry
  no memory    (an LD_PRELOAD shim) a request's answer cannot be made:
               its connection closes, never an answer owed for ever
  WAL gone     truncated under load: writes stop with the reason, reads go
               on, a restart refuses the damaged file
  clock        (libfaketime on the wall clock only) stepped back a day:
               checkpoints keep coming; a year ahead for a moment: entry
               times do not follow it and node.status counts the refusal
Only 127.0.0.1; bounded in time.  Prints TAP.
"""
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
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


@contextlib.contextmanager
def node_on_small_fs(what, size_kb, workers):
    """A node whose data directory lies on a tmpfs of size_kb (its logs stay
    on a disk with room); None, the case skipped, where none can be mounted."""
    if os.geteuid() != 0:
        skip("%s: needs root to mount a small tmpfs" % what)
        yield None, None
        return
    mnt = tempfile.mkdtemp(prefix="tranche-full-")
    if not mount_small_fs(mnt, size_kb):
        skip("%s: mount -t tmpfs is not allowed here" % what)
        os.rmdir(mnt)
        yield None, None
        return
    node = tc.Node(workers=workers)
    node.datadir = os.path.join(mnt, "data")
    try:
        yield node, mnt
    finally:
        node.kill()
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(mnt, ignore_errors=True)
        node.cleanup()


def fill(path, name="filler"):
    """Fills the filesystem of path with one file; returns its name."""
    filler = os.path.join(path, name)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 20, 4096):  # quickly, then to the last page
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def case_disk_full():
    with node_on_small_fs("disk full", 6 * 1024, workers=1) as (node, mnt):
        if node is None:
            return
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


# ------------------------------------------------------------------ disk full under load

LOAD_CONNS, LOAD_DEPTH = 8, 24


def submit_line(tx, key, id_):
    b = tc.tx_bytes(tx)
    return json.dumps({"jsonrpc": "2.0", "method": "tx.submit", "id": id_,
                       "params": {"tx": b.decode(), "sig": tc.sign_tx(b, key)}}).encode() + b"\n"


class Load:
    """LOAD_CONNS connections, each sending its lines LOAD_DEPTH at a time
    (the next chunk once the last is answered) until its lines run out or
    stop() is called.  answers: [(line, result or error object)], None for a
    request the connection never answered (it ended, or was quiet for 60 s)."""

    def __init__(self, node, lines_per_conn):
        self.answers, self.errors = [], 0
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.conn, args=(node, lines)) for lines in lines_per_conn]
        for t in self.threads:
            t.start()

    def conn(self, node, lines):
        c = node.connect(timeout=60)
        try:
            for k in range(0, len(lines), LOAD_DEPTH):
                if self.stopping.is_set():
                    break
                chunk = lines[k:k + LOAD_DEPTH]
                c.send_raw(b"".join(chunk))
                for line in chunk:
                    try:
                        resp = c.recv(timeout=60)
                        resp = resp.get("error", resp.get("result")) if isinstance(resp, dict) else None
                    except Exception:  # noqa: BLE001 - a missing answer is what the caller checks
                        resp = None
                    with self.lock:
                        self.answers.append((line, resp))
                        self.errors += tc.is_error(resp)
        finally:
            c.close()

    def count(self):
        with self.lock:
            return len(self.answers), self.errors

    def finished(self):
        return not any(t.is_alive() for t in self.threads)

    def stop(self):
        self.stopping.set()
        return self.join()

    def join(self):
        for t in self.threads:
            t.join(120)
        return self.answers


def account_lines(node, n, tag):
    return [[submit_line(node.tx("account.open", node.admin, account=tc.Key().pk, roles=["investor"],
                                 jurisdiction="DE", kyc=True), node.admin, "%s-%d-%d" % (tag, c, k))
             for k in range(n)] for c in range(LOAD_CONNS)]


def until(cond, seconds):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def after_failed_commits(node, results, size0, what):
    """What must hold once the node has room again, after failed group commits under load: every
    request answered, every failure a disk-full one, each failed tx new to the node and each answered
    one a duplicate of its own entry, the journal holding each tx once, and the journal verifying."""
    missing = [line for line, a in results if a is None]
    T.check(not missing, "%s: every request is answered" % what, len(missing))
    receipts = [(line, a) for line, a in results if isinstance(a, dict) and "seq" in a]
    failed = [(line, a) for line, a in results if tc.is_error(a)]
    unexplained = [a for _, a in failed if "disk full" not in a["message"]]
    T.check(failed and not unexplained, "%s: %d of %d txs fail, each saying disk full"
            % (what, len(failed), len(results)), unexplained[:2])
    again = [[] for _ in range(LOAD_CONNS)]
    for k, (line, _) in enumerate(receipts + failed):
        again[k % LOAD_CONNS].append(line)
    second = dict(Load(node, again).join())
    fresh = [second.get(line) for line, _ in failed]
    T.check(all(isinstance(a, dict) and a.get("duplicate") is False for a in fresh),
            "%s: with room again each of the %d failed txs is accepted afresh" % (what, len(fresh)),
            [a for a in fresh if not (isinstance(a, dict) and a.get("duplicate") is False)][:2])
    kept = [(first, second.get(line)) for line, first in receipts]
    T.check(all(isinstance(b, dict) and b.get("duplicate") is True and
                (b["seq"], b["txid"], b["hash"]) == (a["seq"], a["txid"], a["hash"]) for a, b in kept),
            "%s: each of the %d answered txs is a duplicate of its own entry" % (what, len(kept)),
            [p for p in kept if not (isinstance(p[1], dict) and p[1].get("seq") == p[0]["seq"])][:2])
    # the writers behind retry a failed write every TR_DERIVED_RETRY_MS; reads say "retry later" until then
    until(lambda: not tc.is_error(node.roe("ledger.head")), 10)
    T.eq(node.roe("ledger.head").get("size"), size0 + len(receipts) + len(failed),
         "%s: the journal holds each tx once, with no gap" % what)
    T.check(node.stop() == 0, "%s: the node stops cleanly once room is made" % what)
    rc, out, err = run([node.tranchectl, "verify", "--datadir", node.datadir], timeout=120)
    T.check(rc == 0, "%s: the journal verifies (chain, tree, state replayed)" % what, err[-300:])


def failed_behind(answered):
    return [a for _, a in answered if tc.is_error(a) and "an earlier batch's commit failed" in a["message"]]


def case_disk_full_under_load():
    """A failed group commit under load, on a really full disk (journal_stage.c): the batches
    failed with it leave no trace in memory or on disk, and nothing answered is lost."""
    # room for every round's rows: only the filler fills it
    with node_on_small_fs("disk full under load", 64 * 1024, workers=2) as (node, mnt):
        if node is None:
            return
        node.init().start()
        size0 = node.head()["size"]
        answered = []
        # The disk stays full for a moment after the first failure, then is freed at once: the
        # batches applied behind a failed commit must fail either way, even once commits work again.
        for phase, linger in (("full", 0.2), ("freed", 0.0)):
            # A WAL with room left from an earlier cycle takes commits on a full disk until it must
            # grow, and one load may end before that: loads follow until a commit fails.
            filler = None
            for rnd in range(3):
                load = Load(node, account_lines(node, LOAD_DEPTH * 12, "%s%d" % (phase, rnd)))
                if filler is None:
                    until(lambda: load.count()[0] >= LOAD_CONNS * LOAD_DEPTH * 2, 60)
                    filler = fill(mnt, "filler")  # while batches queue behind the journal's commits
                until(lambda: load.count()[1] > 0 or load.finished(), 10)
                if load.count()[1] > 0:
                    break
                answered += load.join()
            else:
                load = None
            time.sleep(linger)
            os.remove(filler)
            time.sleep(0.3)  # the load goes on over the rebuilt state
            if load is not None:
                answered += load.stop()
        # Whether a batch happened to be queued behind the failing commit is timing here; the case
        # below makes it certain.  This says which one this run covered.
        T.comment("disk full under load: %s" % ("batches queued behind the failed commit failed with it"
                                                 if failed_behind(answered) else
                                                 "no batch happened to be queued behind a failed commit"))
        after_failed_commits(node, answered, size0, "disk full under load")


def node_with_shim(shim_var, cue_var, what, **env):
    """A node (not started) whose daemon preloads the test shim named by $shim_var, with its cue
    file's path in $cue_var; (None, None) after a skip when the shim is not built."""
    shim = os.environ.get(shim_var, "")
    if not os.path.exists(shim):
        skip("%s: the shim %r is not built" % (what, shim))
        return None, None
    node = tc.Node(workers=2)
    cue = os.path.join(node.tmp, "cue")
    node.env = dict(env, LD_PRELOAD=shim, **{cue_var: cue},
                    # under ASan the shim is preloaded ahead of its runtime, which is fine here
                    ASAN_OPTIONS=":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"])))
    return node, cue


def case_wal_full_on_cue():
    """One failed group commit with batches certainly queued behind it: tests/support/wal_full.c
    fails tr-journal's next WAL write after a 300 ms wait whenever a cue file appears, so tr-seq
    applies and queues batches behind the commit about to fail.  They must fail with it
    (journal_stage.c: "an earlier batch's commit failed") although the commit after it would
    succeed, and leave no trace; three cues, each over the state rebuilt after the last."""
    node, cue = node_with_shim("TR_WAL_FULL_SHIM", "TR_TEST_WAL_FULL", "wal full on cue", TR_TEST_WAL_FULL_MS="300")
    if node is None:
        return
    try:
        node.init().start()
        size0 = node.head()["size"]
        load = Load(node, account_lines(node, LOAD_DEPTH * 16, "cue"))
        seen = []
        for k in range(3):
            until(lambda: load.count()[0] >= LOAD_CONNS * LOAD_DEPTH * (2 + 3 * k), 60)
            errors = load.count()[1]
            with open(cue, "w"):
                pass
            seen.append(until(lambda: not os.path.exists(cue) and load.count()[1] > errors, 20))
        answered = load.join()
        T.check(all(seen), "wal full on cue: each of 3 cues failed a commit", seen)
        behind = failed_behind(answered)
        T.check(behind, "wal full on cue: batches queued behind a failing commit fail with it (%d txs)"
                % len(behind), [a for _, a in answered if tc.is_error(a)][:2])
        after_failed_commits(node, answered, size0, "wal full on cue")
    finally:
        node.kill()
        node.cleanup()


def case_no_memory_for_an_answer():
    """A request whose answer cannot be made (tests/support/no_memory.c: its element's calloc
    fails, on cue) must not leave its client waiting for ever: the answers before it arrive, then
    its connection closes; other connections and the node go on.  Once through the general path
    (ledger.head), once through the plain tx.submit path, which then must not have run the tx."""
    node, cue = node_with_shim("TR_NO_MEMORY_SHIM", "TR_TEST_NO_MEMORY", "no memory for an answer")
    if node is None:
        return
    try:
        node.init().start()
        bystander = node.connect()
        tx = node.tx("account.open", node.admin, account=tc.Key().pk, roles=["investor"], jurisdiction="DE", kyc=True)
        for what, line in (("ledger.head", b'{"jsonrpc":"2.0","method":"ledger.head","id":2}\n'),
                           ("tx.submit", submit_line(tx, node.admin, 2))):
            with node.connect() as c:
                T.eq(c.call("ledger.head")["size"], node.head()["size"], "no memory, %s: answered before the cue" % what)
                with open(cue, "w"):
                    pass
                c.send_raw(line)
                T.check(c.at_eof(10.0), "no memory, %s: the connection closes rather than leave it unanswered" % what,
                        c.buf[:200])
                T.check(not os.path.exists(cue), "no memory, %s: the cue was taken" % what)
            T.check(isinstance(bystander.call("ledger.head")["size"], int),
                    "no memory, %s: another connection is still served" % what)
        T.check(node.alive(), "no memory: the node is still running")
        T.check(not tc.is_error(node.submit(tx, node.admin)),
                "no memory: the tx whose answer was lost had not run; it is accepted now")
        bystander.close()
    finally:
        node.kill()
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
        # libfaketime re-reads its file on every call from every thread; once in a few runs the
        # sequencer's reading still came out unshifted (so nothing was refused, and nothing was
        # wrong).  Up to three tries for one refused reading; every try must keep the time real.
        set_offset("+0")
        time.sleep(0.3)
        tries, near, clock = 0, [], {}
        while tries < 3 and clock.get("refused_readings", 0) < 1:
            tries += 1
            wall_ms = int(time.time() * 1000)
            set_offset("+365d")
            _, r = open_account(node, "ahead %d" % tries)
            set_offset("+0")
            entry = node.call("ledger.entry", {"seq": r["seq"]}) if accepted(r) else {}
            near.append(accepted(r) and abs(entry.get("time", 0) - wall_ms) < 60 * 60 * 1000)
            clock = node.call("node.status").get("clock", {})
        T.check(all(near), "clock a year ahead: the tx is accepted, its entry time near the real time", near)
        T.check(clock.get("refused_readings", 0) >= 1 and clock.get("skew_max_ms") == 60000,
                "node.status counts the refused clock reading against clock_skew_max (try %d)" % tries, clock)
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
         ("disk full under load", case_disk_full_under_load), ("wal full on cue", case_wal_full_on_cue),
         ("no memory for an answer", case_no_memory_for_an_answer),
         ("clock", case_clock), ("WAL truncated", case_wal_truncated)]


def main():
    for name, fn in CASES:
        T.comment("--- " + name)
        T.section(name, fn)
    T.done()


if __name__ == "__main__":
    main()
