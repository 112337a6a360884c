#!/usr/bin/env python3
"""kill -9 in the middle of an online backup (issue 7).

The backup runs inside tranched (control socket, SQLite online backup API on
the libuv thread pool) into a temporary file that is renamed into place only
when complete.  Kill the daemon at random moments while a backup runs and
check: the target file is either absent or a complete database whose copy of
the data directory passes `tranchectl verify`; the node restarts at the same
journal size; the live directory still verifies.
"""
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
SEED = int(os.environ.get("TRANCHE_SEED", "20261124"))
rng = random.Random(SEED)
T.comment("seed %d" % SEED)


def grow(node, n, depth=64):
    """n account.opens, pipelined on one connection."""
    c = node.connect()
    sent = got = 0
    while got < n:
        while sent < n and sent - got < depth:
            k = tc.Key()
            b = tc.tx_bytes(node.tx("account.open", node.admin, account=k.pk, roles=["investor"],
                                    jurisdiction="GB", kyc=True))
            c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "id": sent,
                        "params": {"tx": b.decode(), "sig": tc.sign_tx(b, node.admin)}})
            sent += 1
        r = c.recv()
        got += 1
        if "result" not in r:
            T.check(False, "growth tx accepted", r)
            break
    c.close()


def copy_dir_with(node, dst, db_file):
    os.mkdir(dst, 0o700)
    for n in os.listdir(node.datadir):
        if n not in ("control.sock", "tranche.db", "tranche.db-wal", "tranche.db-shm"):
            shutil.copy2(os.path.join(node.datadir, n), os.path.join(dst, n))
    shutil.copy2(db_file, os.path.join(dst, "tranche.db"))
    return dst


with tc.Node() as node:
    node.init()
    node.start()
    grow(node, 6000)
    size = node.head()["size"]
    T.comment("journal size %d" % size)
    for cycle in range(5):
        target = os.path.join(node.tmp, "backup-%d.db" % cycle)
        ctl = subprocess.Popen([node.tranchectl, "backup", "--datadir", node.datadir, "--to", target],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, 0.08))
        node.kill()
        try:
            ctl.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ctl.kill()
            T.check(False, "cycle %d: tranchectl backup returned after the daemon died" % cycle)
        if os.path.exists(target):
            d = copy_dir_with(node, os.path.join(node.tmp, "restore-%d" % cycle), target)
            r = node.ctl("verify", "--datadir", d)
            T.eq(r.returncode, 0, "cycle %d: the backup file that exists is complete and verifies" % cycle)
        else:
            T.check(True, "cycle %d: killed before the backup completed: no file at the target" % cycle)
        node.start()
        T.eq(node.head()["size"], size, "cycle %d: restarted node has every entry" % cycle)
    # Finding 13 (issue 12): a backup killed half-way leaves NAME.partial-PID
    # and its -journal; the next backup into that directory removes those of
    # dead processes, and nothing else.
    left = sorted(n for n in os.listdir(node.tmp) if ".partial-" in n)
    T.comment("partials left by the kills: %r" % left)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = ["old.db.partial-%d" % dead.pid, "old.db.partial-%d-journal" % dead.pid]
    live = "live.db.partial-%d" % os.getpid()          # a process that still runs
    foreign = "notes.txt.partial-%d" % dead.pid         # not a database copy
    for n in stale + [live]:
        with open(os.path.join(node.tmp, n), "wb") as f:
            f.write(b"SQLite format 3\x00" + b"\x00" * 100)
    with open(os.path.join(node.tmp, foreign), "w") as f:
        f.write("someone's notes\n")
    r = node.ctl("backup", "--datadir", node.datadir, "--to", os.path.join(node.tmp, "after-kills.db"))
    T.eq(r.returncode, 0, "a backup after the kills succeeds")
    now = set(os.listdir(node.tmp))
    T.eq(sorted(n for n in now if ".partial-" in n and n not in (live, foreign)), [],
         "the next backup removed every partial of a dead process")
    T.check(live in now, "a partial of a live process is kept")
    T.check(foreign in now, "a file that is not a database copy is kept")
    T.eq(node.stop(), 0, "clean stop")
    r = node.ctl("verify", "--datadir", node.datadir)
    T.eq(r.returncode, 0, "the live directory verifies after all the kills")


def emfile_cases():
    """Finding 17 (issue 12): out of file descriptors, every failure says "too many open files".

    tranched runs under RLIMIT_NOFILE from the lowest limit it starts with up
    to the first at which a backup succeeds.  Every warning or error it logs
    on the way (control accept, WAL checkpointer, checkpoint file, backup)
    must name the cause, and so must tranchectl's answer to a failed backup.
    """
    import resource
    node = tc.Node().init()
    try:
        good, named_by_ctl, tried = False, False, []
        for limit in range(12, 80):
            port = tc.free_port()
            err_path = os.path.join(node.tmp, "emfile-%d.err" % limit)
            with open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    [node.tranched, "--datadir", node.datadir, "--listen", "127.0.0.1:%d" % port, "--workers", "2"],
                    stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
            up = False
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if node.ctl("ping", "--rpc", "127.0.0.1:%d" % port, "--quiet").returncode == 0:
                    up = True
                    break
                time.sleep(0.1)
            if not up:
                proc.kill()
                proc.wait()
                continue
            time.sleep(1.2)  # the WAL checkpointer and a checkpoint get their turn
            target = os.path.join(node.tmp, "emfile-%d.db" % limit)
            r = node.ctl("backup", "--datadir", node.datadir, "--to", target)
            proc.terminate()
            proc.wait(timeout=30)
            with open(err_path, "rb") as f:
                log = f.read().decode("utf-8", "replace")
            bad = [l for l in log.splitlines() if (" warn " in l or " error " in l)
                   and "too many open files" not in l.lower() and "mallopt" not in l]  # mallopt: under ASan
            tried.append(limit)
            T.eq(bad, [], "limit %d: every warning and error in the log names too many open files" % limit)
            err = r.stderr.decode("utf-8", "replace")
            if r.returncode == 0:
                good = True
                break
            T.check("too many open files" in err.lower() or "its log says why" in err,
                    "limit %d: tranchectl backup says why it failed" % limit, err)
            named_by_ctl = named_by_ctl or "too many open files" in err.lower()
        T.comment("fd limits tried: %r" % tried)
        T.check(tried and good, "a backup succeeds once enough descriptors are allowed")
        T.check(named_by_ctl, "at some limit tranchectl backup itself says 'too many open files'")
    finally:
        node.cleanup()


T.section("emfile", emfile_cases)
T.done()
