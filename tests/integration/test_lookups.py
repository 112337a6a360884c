#!/usr/bin/python3
"""test_lookups.py - the lookup tables (entry_txids, entry_ids) behind the journal,
written late by their own thread (tr-lookups, daemon/lookups.c), and account
history, written by it at once:

  * past TR_LOOKUP_WRITE_EVERY (8,192) entries the tables follow, and once the
    node is idle they reach the derived mark, however few entries lag;
  * each table has two levels (schema 007); with lookup_two_levels_from = 0
    the first run, TR_LOOKUP_MERGE_MIN rows into the small level, is merged
    into the large one; after the merge every entry up to the mark has its
    row in exactly one level, and lookups find rows in both;
  * tx.get and tx.find find every entry, before the lookup mark (the tables)
    and after it (the journal's tail); an unknown txid or (signer, id) is
    -32004; node.status shows lookups <= written <= size;
  * account history, written at once by the same thread: account.history
    asked right after a receipt lists that entry; a start with history
    behind the derived mark reads the missing rows back from the journal;
  * kill -9 while rows are held in memory: after the restart every txid is
    still found, the tables catch up, and `tranchectl verify` (whose audit
    checks every lookup row against its entry) passes;
  * kill -9 as a merge starts: every acknowledged tx is found after the
    restart, and the next merge leaves each row in exactly one level;
  * no sanitizer report in the daemon's logs (tools/test.sh runs it under
    ThreadSanitizer too).

Only 127.0.0.1; bounded in time.  Prints TAP.
"""
import os
import random
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
RNG = random.Random(int(os.environ.get("TRANCHE_TEST_SEED", "20261207")))
WRITE_EVERY = 8192  # lib/tr_limits.h TR_LOOKUP_WRITE_EVERY
BATCH = 100         # JSON-RPC elements a line (TR_RPC_BATCH_MAX)


def submit_many(node, n, out=None):
    """n account.open txs from the admin, a JSON-RPC batch of 100 a line; returns [(txid, seq, id)],
    appended to `out` as they are acknowledged when it is given."""
    out = [] if out is None else out
    want = len(out) + n
    c = node.connect(timeout=120)
    try:
        while len(out) < want:
            k = min(BATCH, want - len(out))
            reqs, ids = [], []
            for j in range(k):
                tx_id = tc.new_id("lk")
                b = tc.tx_bytes(node.tx("account.open", node.admin, id=tx_id, account=tc.Key().pk,
                                        roles=["investor"], jurisdiction="US", kyc=True))
                reqs.append({"jsonrpc": "2.0", "method": "tx.submit", "id": j,
                             "params": {"tx": b.decode(), "sig": tc.sign_tx(b, node.admin)}})
                ids.append(tx_id)
            c.send_obj(reqs)
            resp = sorted(c.recv(timeout=120), key=lambda r: r["id"])
            for r, tx_id in zip(resp, ids):
                if "result" not in r:
                    raise RuntimeError("tx.submit refused: %r" % (r,))
                out.append((r["result"]["txid"], r["result"]["seq"], tx_id))
    finally:
        c.close()
    return out


def derived(node):
    return node.call("node.status")["derived"]


def wait_lookups_caught_up(node, timeout=60):
    deadline, st = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        size = node.head()["size"]
        st = derived(node)
        if st["lookups_through"] == st["written_through"] == size:
            return st
        time.sleep(0.1)
    T.comment("lookup tables still behind: %r" % (st,))
    return None


def all_found(node, sent, what):
    """tx.get of every txid and tx.find of every (signer, id) answer their own seq."""
    c = node.connect(timeout=120)
    bad = []
    try:
        for at in range(0, len(sent), BATCH):
            part = sent[at:at + BATCH]
            c.send_obj([{"jsonrpc": "2.0", "method": "tx.get", "id": j, "params": {"txid": t}}
                        for j, (t, _, _) in enumerate(part)])
            for r in c.recv(timeout=120):
                t, seq, _ = part[r["id"]]
                if r.get("result", {}).get("seq") != seq:
                    bad.append(("tx.get", t, seq, r))
        sample = RNG.sample(sent, min(300, len(sent))) + sent[-50:]
        for at in range(0, len(sample), BATCH):
            part = sample[at:at + BATCH]
            c.send_obj([{"jsonrpc": "2.0", "method": "tx.find", "id": j,
                         "params": {"signer": node.admin.pk, "id": i}} for j, (_, _, i) in enumerate(part)])
            for r in c.recv(timeout=120):
                _, seq, i = part[r["id"]]
                if r.get("result", {}).get("seq") != seq:
                    bad.append(("tx.find", i, seq, r))
    finally:
        c.close()
    T.check(not bad, "%s: tx.get of all %d txids and tx.find of %d (signer, id) answer their seq"
            % (what, len(sent), min(300, len(sent)) + 50), bad[:3])


def levels(node):
    """Per lookup table: (rows in the large level, its highest seq, rows up to
    the mark in the small one, rows in both), and the mark."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(node.datadir, "tranche.db"), uri=True)
    try:
        mark = db.execute("SELECT seq FROM lookup_progress").fetchone()[0]
        got = {}
        for t in ("entry_txids", "entry_ids"):
            large = db.execute("SELECT count(*), coalesce(max(seq), 0) FROM %s" % t).fetchone()
            small = db.execute("SELECT count(*) FROM %s_recent WHERE seq <= ?" % t, (mark,)).fetchone()[0]
            both = db.execute("SELECT count(*) FROM %s JOIN %s_recent USING (seq)" % (t, t)).fetchone()[0]
            got[t] = (large[0], large[1], small, both)
    finally:
        db.close()
    return got, mark


def first_run_merged(node, timeout=30):
    """Schema 007: the first run (TR_LOOKUP_MERGE_MIN rows into the small
    level) is merged into the large one; once the merge is over, every entry
    up to the mark has its row in exactly one level of each table."""
    deadline = time.monotonic() + timeout
    while True:
        got, mark = levels(node)
        merges = derived(node)["lookups_merges"]
        ok = merges >= 1 and all(large + small == mark and top <= mark and both == 0 and large >= WRITE_EVERY
                                 for large, top, small, both in got.values())
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # a merge still copying
    T.check(ok, "the first run merged into the large level (node.status lookups_merges %d); each entry up to"
            " the lookup mark %d has its row in one level of each table" % (merges, mark), got)


def kill_at_merge(node, acked):
    """One load of a run's worth; kill -9 once the mark has passed it (a merge
    is then due) while lookups_merges has not moved.  Returns node.status's
    derived object at the kill, or None when the merge was over first."""
    st = derived(node)
    merges0, mark0 = st["lookups_merges"], st["lookups_through"]
    failed = []

    def load():
        try:
            submit_many(node, WRITE_EVERY + 200, acked)
        except Exception as e:  # noqa: BLE001 - the kill cuts the load short
            failed.append(e)

    th = threading.Thread(target=load)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)  # the load signs in Python: the poller must not wait 5 ms for the GIL
    th.start()
    c = node.connect(timeout=30)
    killed, deadline = None, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # the run may come after the load: the derived writer lags
            st = c.call("node.status")["derived"]
            if st["lookups_through"] >= mark0 + WRITE_EVERY and st["lookups_merges"] == merges0:
                node.kill()
                killed = st
                break
            if st["lookups_merges"] > merges0:
                break  # over before a poll saw it
    finally:
        c.close()
        sys.setswitchinterval(switch)
    th.join(timeout=120)
    return killed


def kill_during_merge(node, sent):
    """kill -9 as a merge starts: after the restart every acknowledged tx is
    found, and the next write merges again, leaving every entry's row in
    exactly one level.  Returns the txs acknowledged."""
    acked, killed = [], None
    for _ in range(3):  # a merge takes tens of ms: polled every ~1 ms, one is caught at once
        killed = kill_at_merge(node, acked)
        if killed:
            break
        wait_lookups_caught_up(node)
    got, mark = levels(node)
    T.comment("killed at %r; then in the file %r (mark %d)" % (killed, got, mark))
    T.check(killed is not None, "kill -9 right after a run that makes a merge due, before it completes"
            " (%d txs acknowledged)" % len(acked))
    if node.alive():
        node.kill()
    node.start()
    all_found(node, sent + acked, "after kill -9 at a merge and a restart")
    more = submit_many(node, 300)  # a write at least, after which the due merge runs again
    T.check(wait_lookups_caught_up(node) is not None, "after it the lookup tables catch up")
    deadline = time.monotonic() + 30
    while True:  # lookups_merges counts from this start
        merges = derived(node)["lookups_merges"]
        got, mark = levels(node)
        ok = merges >= 1 and all(large + small == mark and both == 0 for large, _, small, both in got.values())
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    T.check(ok, "the next merge completes (%d since the restart): every entry up to the mark %d has its row in"
            " exactly one level" % (merges, mark), got)
    return acked + more


def history_sees_receipts(node, rounds=40):
    """account.history, asked on another connection right after a receipt,
    lists that entry: the query waits for account history (tr-lookups) as
    well as the derived tables."""
    q = node.connect(timeout=60)
    bad, opened = [], []
    try:
        for _ in range(rounds):
            k = tc.Key()
            r = node.submit(node.tx("account.open", node.admin, account=k.pk, roles=["investor"], jurisdiction="US",
                                    kyc=True), node.admin)
            q.send_obj({"jsonrpc": "2.0", "method": "account.history", "id": 1, "params": {"account": k.pk}})
            h = q.recv(timeout=60).get("result", {})
            if not isinstance(r, dict) or [e["seq"] for e in h.get("entries", [])] != [r.get("seq")] \
                    or h.get("size", 0) < r.get("seq", 0):
                bad.append((r, h))
            opened.append((r.get("seq"), k))
    finally:
        q.close()
    T.check(not bad, "account.history right after each of %d receipts lists that entry (size covers it)" % rounds,
            bad[:2])
    return opened


def history_behind_at_start(node, opened):
    """History is written after the derived tables, so a hard stop can leave
    it behind their mark: the start reads the missing rows back from the
    journal (only as far as the derived mark; the derived mark stays)."""
    db = sqlite3.connect(os.path.join(node.datadir, "tranche.db"))
    try:
        (derived_mark,) = db.execute("SELECT seq FROM derived_progress").fetchone()
        back = min(s for s, _ in opened) - 1
        db.execute("DELETE FROM account_entries WHERE seq > ?", (back,))
        db.execute("UPDATE history_progress SET seq = ?", (back,))
        db.commit()
    finally:
        db.close()
    node.start()
    st = derived(node)
    T.check(st["history_through"] >= derived_mark and st["written_through"] >= derived_mark,
            "a start with history %d entries behind the derived mark catches it up" % (derived_mark - back), st)
    bad = []
    for s, k in opened:
        h = node.call("account.history", {"account": k.pk})
        if [e["seq"] for e in h["entries"]] != [s]:
            bad.append((s, h))
    T.check(not bad, "after it, account.history of each of %d accounts lists its entry again" % len(opened), bad[:2])


def unknown_not_found(node):
    for method, params in (("tx.get", {"txid": "%064x" % RNG.getrandbits(256)}),
                           ("tx.find", {"signer": node.admin.pk, "id": "never-sent"})):
        r = node.roe(method, params)
        T.check(isinstance(r, dict) and r.get("code") == -32004, "%s of an unknown key -> -32004" % method, r)


def main():
    node = tc.Node().init()
    try:
        # Two levels from the first run (the default waits for 2^18 rows): the
        # run goes into the small level and is merged at once, the tail after
        # it stays small, so lookups find rows in both and after the mark.
        with open(os.path.join(node.datadir, "tranche.conf"), "a") as f:
            f.write("lookup_two_levels_from = 0\n")
        node.start()
        sent = submit_many(node, WRITE_EVERY + 400)
        st = derived(node)
        T.check(st["lookups_through"] <= st["written_through"] <= node.head()["size"],
                "node.status under load: lookups_through <= written_through <= size", st)
        T.check(st["history_through"] <= node.head()["size"], "node.status: history_through <= size", st)
        opened = history_sees_receipts(node)
        st = wait_lookups_caught_up(node)
        T.check(st is not None, "idle, the lookup tables reach the derived mark and the journal's size")
        first_run_merged(node)
        all_found(node, sent, "after a run and the idle write")
        unknown_not_found(node)

        # Rows held in memory (fewer than a run) when the node is killed.
        more = submit_many(node, 600)
        st = derived(node)
        T.comment("at the kill: %r, size %d" % (st, node.head()["size"]))
        node.kill()
        node.start()
        all_found(node, sent + more, "after kill -9 and a restart (the tail read from the journal)")
        T.check(wait_lookups_caught_up(node) is not None, "after the restart the lookup tables catch up")
        unknown_not_found(node)
        more += kill_during_merge(node, sent + more)
        rc = node.stop()
        T.check(rc == 0, "SIGTERM: exit 0", rc)
        history_behind_at_start(node, opened)
        rc = node.stop()
        T.check(rc == 0, "SIGTERM after the history rebuild: exit 0", rc)
        r = node.ctl("verify", "--datadir", node.datadir, timeout=300)
        T.check(r.returncode == 0, "tranchectl verify passes (the audit checks every lookup row)",
                (r.returncode, r.stdout.decode()[-400:], r.stderr.decode()[-400:]))
        reports = []
        for i in range(1, node.starts + 1):
            with open(os.path.join(node.tmp, "tranched.%d.err" % i), "rb") as f:
                err = f.read().decode("utf-8", "replace")
            if "Sanitizer" in err or "runtime error" in err:
                reports.append(err[-3000:])
        T.check(not reports, "no sanitizer report in the daemon's logs (start %d)" % node.starts, reports[:1])
    except Exception as e:  # noqa: BLE001 - reported as a failed check with the node's logs
        T.check(False, "lookups scenario ran without an exception", "%r\n%s" % (e, node.logs()))
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
