#!/usr/bin/env python3
"""test_restore.py - `tranchectl restore` (issue 12, finding 9).

Copying a backup over DIR/tranche.db while the old tranche.db-wal is still
there lets SQLite replay that stale WAL onto the backup.  restore must: refuse
while a tranched holds DIR (and write nothing), audit the backup, refuse one
of another node, one that does not verify, and one behind DIR/checkpoint
unless --force, and install it with no WAL, -shm or journal beside it; the
node then starts at the backup's size and `verify` passes.
Standard library (+ trclient); prints TAP.
"""
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)


def grow(node, n):
    for _ in range(n):
        r = node.submit(node.tx("account.open", node.admin, account=tc.Key().pk, roles=["investor"],
                                jurisdiction="GB", kyc=True), node.admin)
        if "seq" not in r:
            T.check(False, "growth tx accepted", r)
            return


def listing(d):
    """Name -> (inode, size, mtime) of every file in d but the lock (restore takes it)."""
    out = {}
    for n in os.listdir(d):
        if n == "lock":
            continue
        st = os.lstat(os.path.join(d, n))
        out[n] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def restore(node, src, *extra):
    r = node.ctl("restore", "--datadir", node.datadir, "--from", src, *extra)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def restore_on_terminal(node, src):
    """restore with stderr on a pseudo-terminal: (rc, stdout, what the terminal got)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([node.tranchectl, "restore", "--datadir", node.datadir, "--from", src],
                         stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    out = p.communicate(timeout=120)[0]
    os.close(master)
    return p.returncode, out.decode(), got.decode("utf-8", "replace")


def side_files(node):
    return sorted(n for n in os.listdir(node.datadir) if n.startswith("tranche.db-"))


def main():
    with tc.Node() as node, tc.Node() as other:
        other.init()
        other_backup = os.path.join(other.datadir, "..", "other.db")
        node.init().start()
        grow(node, 20)
        b1 = os.path.join(node.tmp, "b1.db")
        T.eq(node.ctl("backup", "--datadir", node.datadir, "--to", b1).returncode, 0, "backup b1")
        n1 = node.head()["size"]
        grow(node, 30)
        time.sleep(1.5)  # the checkpoint of the final size is published
        b2 = os.path.join(node.tmp, "b2.db")
        T.eq(node.ctl("backup", "--datadir", node.datadir, "--to", b2).returncode, 0, "backup b2")
        n2 = node.head()["size"]

        before = listing(node.datadir)
        rc, out, err = restore(node, b2)
        T.check(rc == 1 and "in use by pid %d" % node.proc.pid in err,
                "restore refuses while tranched holds DIR, naming its pid", (rc, out, err))
        T.eq(listing(node.datadir), before, "the refused restore wrote nothing in DIR")

        node.kill()  # kill -9: the WAL stays beside tranche.db (and the cached connection goes with it)
        T.check("tranche.db-wal" in os.listdir(node.datadir), "test set-up: a WAL is left by kill -9")

        before = listing(node.datadir)
        rc, out, err = restore(node, b1)
        T.check(rc == 1 and "fork" in err and "--force" in err,
                "a backup behind DIR/checkpoint is refused without --force", (rc, out, err))
        T.eq(listing(node.datadir), before, "the refused restore changed nothing")

        garbage = os.path.join(node.tmp, "garbage.db")
        with open(garbage, "wb") as f:
            f.write(b"not a database at all\n" * 100)
        rc, out, err = restore(node, garbage)
        T.check(rc == 1 and "not a usable database" in err, "a file that is not a database is refused",
                (rc, out, err))
        T.check(restore(node, os.path.join(node.tmp, "missing.db"))[0] == 1, "a missing file is refused")

        tampered = os.path.join(node.tmp, "tampered.db")
        with open(b2, "rb") as f, open(tampered, "wb") as g:
            g.write(f.read())
        db = sqlite3.connect(tampered)
        db.execute("DROP TRIGGER entries_append_only_u")
        db.execute("UPDATE entries SET tx = CAST(REPLACE(CAST(tx AS TEXT), '\"GB\"', '\"FR\"') AS BLOB) "
                   "WHERE seq = 10")
        db.commit()
        db.close()
        rc, out, err = restore(node, tampered)
        T.check(rc == 1 and "FAILED at seq" in out and "does not verify" in err,
                "a backup that does not verify is refused", (rc, out, err))

        other.start()
        T.eq(other.ctl("backup", "--datadir", other.datadir, "--to", os.path.abspath(other_backup)).returncode, 0,
             "backup of another node")
        other.stop()
        rc, out, err = restore(node, other_backup)
        T.check(rc == 1 and "another node" in err, "a backup of another node is refused", (rc, out, err))
        T.eq(listing(node.datadir), before, "none of the refused restores changed DIR")
        T.eq(sorted(n for n in os.listdir(node.datadir) if "restore" in n), [], "no temporary copy is left")

        rc, out, err = restore_on_terminal(node, b2)
        T.check(rc == 0 and ("restored %d entries" % n2) in out, "restore of the latest backup succeeds",
                (rc, out, err))
        T.check("\r" in err and "copy" in err and "signatures" in err and "replay" in err,
                "restore shows its phases' progress on a terminal", err[-400:])
        T.eq(side_files(node), [], "no WAL, -shm or journal beside the restored tranche.db")
        kept = [n for n in os.listdir(node.datadir) if n.startswith("tranche.db.before-restore-")]
        T.check(any(n.endswith("-wal") for n in kept) and any(n[len("tranche.db.before-restore-"):].count("-") == 1
                                                                for n in kept),
                "the replaced database is kept with its WAL", kept)
        node.start()
        T.eq(node.head()["size"], n2, "the node starts on the restored journal")
        grow(node, 3)
        T.eq(node.stop(), 0, "clean stop after restore")
        r = node.ctl("verify", "--datadir", node.datadir)
        T.check(r.returncode == 0 and r.stdout.startswith(b"OK: "), "the restored directory verifies", r.stdout)

        rc, out, err = restore(node, b1, "--force")
        T.check(rc == 0 and ("restored %d entries" % n1) in out and "moving it aside" in err,
                "--force restores a backup behind the checkpoint", (rc, out, err))
        T.check(not os.path.exists(os.path.join(node.datadir, "checkpoint")) and
                any(n.startswith("checkpoint.before-restore-") for n in os.listdir(node.datadir)),
                "--force moved the checkpoint aside")
        node.start()
        T.eq(node.head()["size"], n1, "the node starts on the forced restore")
        T.eq(node.stop(), 0, "clean stop")
        r = node.ctl("verify", "--datadir", node.datadir)
        T.check(r.returncode == 0, "the forced restore verifies", r.stdout)
    T.done()


main()
