#!/usr/bin/python3
"""test_threads.py - every tranched thread carries a name (issue #13), read
from /proc/PID/task/*/comm as top -H, ps -L and tranche-bench see them:

  tr-loop          the main thread (libuv loop; also the process's comm)
  tr-seq           the sequencer (the rules over memory)
  tr-journal       the journal's group commit, behind tr-seq (a single node)
  tr-derive        the writer behind it (state tables, checkpoints)
  tr-lookups       the lookup tables (entry_txids, entry_ids), late
  tr-history       account history (account_entries)
  tr-verify-N      the verify workers, N = 0..--workers-1, and nothing else
  tr-uvpool        every thread of libuv's pool (WAL checkpoints, backups),
                   as many as libuv starts: 4, or UV_THREADPOOL_SIZE

and no other thread (but ThreadSanitizer's own background thread, which keeps
the process's first name, when the daemon is built with it).  The names hold
under load and after a backup (which runs on libuv's pool).  Only 127.0.0.1; bounded in time.  Prints TAP.
"""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().rstrip("\n"))
        except FileNotFoundError:  # a thread that ended between listdir and open
            pass
    return collections.Counter(names)


def under_tsan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libtsan" in f.read()


def expected(workers, uvpool, tsan):
    want = collections.Counter({"tr-loop": 1, "tr-seq": 1, "tr-journal": 1, "tr-derive": 1, "tr-lookups": 1,
                                "tr-history": 1, "tr-uvpool": uvpool})
    if tsan:
        want["tranched"] = 1  # the sanitizer runtime's thread, not the daemon's
    for i in range(workers):
        want["tr-verify-%d" % i] = 1
    return want


def settled_names(pid, want, timeout=5.0):
    """The names once they match (threads name themselves just after they start), or the last seen."""
    deadline = time.monotonic() + timeout
    got = thread_names(pid)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = thread_names(pid)
    return got


def load(node, n):
    """n account.opens pipelined on one connection: work for every stage."""
    c = node.connect()
    sent = got = ok = 0
    while got < n:
        while sent < n and sent - got < 32:
            k = tc.Key()
            b = tc.tx_bytes(node.tx("account.open", node.admin, account=k.pk, roles=["investor"],
                                    jurisdiction="GB", kyc=True))
            c.send_obj({"jsonrpc": "2.0", "method": "tx.submit", "id": sent,
                        "params": {"tx": b.decode(), "sig": tc.sign_tx(b, node.admin)}})
            sent += 1
        r = c.recv()
        got += 1
        ok += "result" in r
    c.close()
    return ok


def case(workers, uvpool_env):
    saved = os.environ.get("UV_THREADPOOL_SIZE")
    if uvpool_env is None:
        os.environ.pop("UV_THREADPOOL_SIZE", None)
        uvpool = 4
    else:
        os.environ["UV_THREADPOOL_SIZE"] = str(uvpool_env)
        uvpool = uvpool_env
    node = tc.Node(workers=workers)
    try:
        node.init().start()
        pid = node.proc.pid
        want = expected(workers, uvpool, under_tsan(pid))
        label = "--workers %d, UV_THREADPOOL_SIZE %s" % (workers, uvpool_env)
        T.eq(settled_names(pid, want), want, "%s: exactly the named threads at start" % label)
        with open("/proc/%d/comm" % pid) as f:
            T.eq(f.read().rstrip("\n"), "tr-loop", "%s: the process's own name is its main thread's" % label)
        T.eq(load(node, 300), 300, "%s: 300 txs accepted" % label)
        time.sleep(0.7)  # a WAL checkpoint runs on libuv's pool
        r = node.ctl("backup", "--datadir", node.datadir, "--to", os.path.join(node.tmp, "b.db"))
        T.check(r.returncode == 0, "%s: a backup on libuv's pool" % label, r.stderr)
        T.eq(settled_names(pid, want), want, "%s: the same names after load, checkpoints and a backup" % label)
        T.eq(node.stop(), 0, "%s: clean stop" % label)
        with open(node.err_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        T.check("Sanitizer" not in err and "runtime error" not in err, "%s: no sanitizer report in the daemon's log"
                % label, err[-4000:])
    finally:
        node.cleanup()
        if saved is None:
            os.environ.pop("UV_THREADPOOL_SIZE", None)
        else:
            os.environ["UV_THREADPOOL_SIZE"] = saved


T.section("two workers, libuv's default pool", case, 2, None)
T.section("three workers, a pool of 2", case, 3, 2)
T.section("one worker, a pool of 1", case, 1, 1)
T.done()
