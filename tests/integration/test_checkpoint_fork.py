#!/usr/bin/env python3
"""A restored old database must never silently fork the log (PROTOCOL.md §3).

The node keeps its latest signed checkpoint in DIR/checkpoint, outside the
database.  Copy the database at size N, let the node grow the journal and
publish a checkpoint past N, stop it, put the old copy back: tranched must
refuse to start (non-zero exit, a message naming the checkpoint), and must
start again once the current database is back.  Also: the checkpoint is
published within about a second while the journal grows, and verifies with
the node's vkey.  Last, a checkpoint row added to the stopped node's
database with sqlite3 fails `tranchectl verify` and is never served.
"""
import json
import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)


def open_accounts(node, n):
    for _ in range(n):
        k = tc.Key()
        r = node.submit(node.tx("account.open", node.admin, account=k.pk, roles=["investor"],
                                jurisdiction="GB", kyc=True), node.admin)
        T.check("seq" in r, "account.open accepted", r)


def wait_checkpoint(node, size, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = node.roe("ledger.checkpoint")
        if isinstance(r, dict) and r.get("size", 0) >= size:
            return r
        time.sleep(0.1)
    return None


with tc.Node() as node:
    node.init()
    node.start()
    open_accounts(node, 3)
    size_old = node.head()["size"]
    cp = wait_checkpoint(node, size_old)
    T.check(cp is not None, "a checkpoint covering size %d appears within 5 s" % size_old)
    if cp:
        T.check(cp["vkey"].startswith(node.chain + "+"), "vkey is named by the chain id", cp)
        with open(os.path.join(node.tmp, "cp.txt"), "w") as f:
            f.write(cp["checkpoint"])
        r = node.ctl("checkpoint", "verify", os.path.join(node.tmp, "cp.txt"), "--vkey", cp["vkey"])
        T.eq(r.returncode, 0, "tranchectl checkpoint verify accepts the served checkpoint")
    T.eq(node.stop(), 0, "SIGTERM stops the node with exit 0")

    db = os.path.join(node.datadir, "tranche.db")
    old = os.path.join(node.tmp, "old.db")
    shutil.copyfile(db, old)                      # a stopped node has no -wal left to copy
    T.check(not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0,
            "a cleanly stopped node leaves no WAL content behind")

    node.start()
    open_accounts(node, 4)
    size_new = node.head()["size"]
    T.check(wait_checkpoint(node, size_new) is not None, "checkpoint advances to %d" % size_new)
    T.eq(node.stop(), 0, "second clean stop")

    current = os.path.join(node.tmp, "current.db")
    shutil.move(db, current)
    shutil.copyfile(old, db)
    proc = tc.subprocess.run([node.tranched, "--datadir", node.datadir, "--listen", "127.0.0.1:%d" % tc.free_port()],
                             stdout=tc.subprocess.PIPE, stderr=tc.subprocess.PIPE, timeout=30)
    err = proc.stderr.decode("utf-8", "replace")
    T.check(proc.returncode != 0, "tranched refuses an old database (exit %d)" % proc.returncode)
    T.check("checkpoint" in err and "refusing" in err, "the refusal names the checkpoint", err[-400:])

    os.remove(db)
    shutil.move(current, db)
    node.start()
    T.eq(node.head()["size"], size_new, "with the current database back it starts at size %d" % size_new)
    good = node.call("ledger.checkpoint")
    T.eq(node.stop(), 0, "clean stop before the database is edited")

    # A row added with sqlite3 (the schema stops UPDATE and DELETE, not
    # INSERT; issue #12, finding 10): the audit names it and the node never
    # serves it.
    bogus_size = size_new + 5
    db_clean = db + ".clean"
    shutil.copyfile(db, db_clean)
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO checkpoints (size, root, time, note) VALUES (?, zeroblob(32), 0, 'bogus')",
                    (bogus_size,))
    con.close()
    r = node.ctl("verify", "--datadir", node.datadir)
    out = r.stdout.decode("utf-8", "replace") if isinstance(r.stdout, bytes) else r.stdout
    T.check(r.returncode == 1 and ("stored checkpoint %d" % bogus_size) in out and "not a note signed" in out,
            "tranchectl verify fails on the added checkpoint row and names it", out)
    proc = tc.subprocess.run([node.tranched, "--datadir", node.datadir, "--listen", "127.0.0.1:%d" % tc.free_port()],
                             stdout=tc.subprocess.PIPE, stderr=tc.subprocess.PIPE, timeout=30)
    err = proc.stderr.decode("utf-8", "replace")
    T.check(proc.returncode == 1 and ("checkpoint %d" % bogus_size) in err and "did not sign" in err,
            "tranched refuses to start on the added checkpoint row and names it", err[-400:])

    # The same row added while the node runs: it is never served.
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    shutil.copyfile(db_clean, db)
    node.start()
    with sqlite3.connect(db, timeout=10) as con:
        con.execute("INSERT INTO checkpoints (size, root, time, note) VALUES (?, zeroblob(32), 0, 'bogus')",
                    (bogus_size,))
    con.close()
    resp = node.conn.call_raw("ledger.checkpoint")
    err = resp.get("error") or {}
    T.check(err.get("code") == -32603 and ("checkpoint %d" % bogus_size) in err.get("message", "")
            and "result" not in resp and "bogus" not in json.dumps(resp),
            "ledger.checkpoint answers a storage error naming the row, never the bogus note", resp)
    T.check(("checkpoint %d" % bogus_size) in node.logs(), "the damage is in the node's log", node.logs())
    T.eq(node.head()["size"], size_new, "other queries still answer")
    T.eq(node.stop(), 0, "final clean stop")
    T.check(good.get("size") == size_new, "before the edit the node served its own checkpoint", good)

T.done()
