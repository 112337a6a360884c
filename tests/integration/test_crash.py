#!/usr/bin/python3
"""test_crash.py - kill -9 under load, and during `tranchectl init`.

Part 1: several threads submit signed transfers and account.opens through
the real daemon, recording every acknowledged receipt (txid, seq, hash).
The daemon is killed with SIGKILL at random moments (seeded RNG, at least 5
cycles) and restarted; a submission whose answer was lost is resubmitted
byte for byte after the restart (section 2 idempotency: it comes back as a
duplicate with its stored receipt, or is accepted now).  After every
restart each acknowledged txid must be in the journal with the same seq and
hash (tx.get); at the end the journal is recomputed from ledger.entries
(section 3 links, hashes, signatures, Merkle root of the latest
checkpoint), the daemon stops cleanly and `tranchectl verify` exits 0.

Part 2: `tranchectl init` is killed at random delays.  Afterwards either
init had finished (the daemon starts and serves entry 1), or the directory
is absent, or it is half made and tranched refuses it with an error message
and a non-zero exit (never a crash or a hang); a new init into a new
directory always works.  What a half-made directory holds, and what
tranched says about it, is printed as TAP comments.  Prints TAP.
"""
import base64
import hashlib
import json
import os
import re
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
SEED = int(os.environ.get("TRANCHE_TEST_SEED", "1337"))
RNG = random.Random(SEED)
CYCLES = int(os.environ.get("TRANCHE_CRASH_CYCLES", "6"))
ASSET = "CRASH-1"
TRANSFER_THREADS = 3
BUDGET_S = 90  # the load phase never runs longer than this


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.port = None                # None while the daemon is down
        self.stop = threading.Event()
        self.acked = {}                 # txid -> (seq, hash)
        self.conflicts = []             # a txid acknowledged twice with different (seq, hash)
        self.unexpected = []            # answers that are neither receipts nor overloaded
        self.resubmitted = 0            # submissions whose answer was lost to a kill
        self.resolved_dup = 0           # ... that came back as duplicates after the restart
        self.history = {}               # account pk -> seqs of acknowledged transfers it was in

    def record(self, r, resent):
        with self.lock:
            key = (r["seq"], r["hash"])
            old = self.acked.get(r["txid"])
            if old is not None and old != key:
                self.conflicts.append((r["txid"], old, key))
            self.acked[r["txid"]] = key
            if resent and r.get("duplicate"):
                self.resolved_dup += 1


def submit_until_answered(sh, conn_box, b, sig):
    """Submits one tx until it gets a definite answer, reconnecting across kills."""
    resent = False
    params = {"tx": b.decode(), "sig": sig}
    while not sh.stop.is_set():
        port = sh.port
        if port is None:
            time.sleep(0.02)
            continue
        try:
            if conn_box[0] is None:
                conn_box[0] = tc.Rpc("127.0.0.1", port, timeout=20)
            r = conn_box[0].result_or_error("tx.submit", params)
        except (OSError, tc.RpcError, ValueError, socket.timeout):
            if conn_box[0] is not None:
                conn_box[0].close()
                conn_box[0] = None
            if not resent:
                resent = True
                with sh.lock:
                    sh.resubmitted += 1
            time.sleep(0.02)
            continue
        if isinstance(r, dict) and "seq" in r:
            sh.record(r, resent)
            return r
        if isinstance(r, dict) and r.get("code") == -32002:
            time.sleep(0.05)
            continue
        with sh.lock:
            sh.unexpected.append(r)
        return r
    return None


def transfer_worker(sh, node, k, a, b):
    conn = [None]
    pair = (a, b)
    i = 0
    while not sh.stop.is_set():
        src, dst = pair[i % 2], pair[(i + 1) % 2]
        tx = tc.tx_bytes(node.tx("transfer", src, id="x%d-%d" % (k, i), asset=ASSET, to=dst.pk, units=1))
        r = submit_until_answered(sh, conn, tx, tc.sign_tx(tx, src))
        if r is not None:
            with sh.lock:
                for who in (src, dst):
                    sh.history.setdefault(who.pk, set()).add(r["seq"])
        i += 1
    if conn[0]:
        conn[0].close()


def open_worker(sh, node):
    conn = [None]
    i = 0
    while not sh.stop.is_set():
        tx = tc.tx_bytes(node.tx("account.open", node.admin, id="open-%d" % i, account=tc.Key().pk,
                                 roles=["investor"], jurisdiction="DE", kyc=True))
        submit_until_answered(sh, conn, tx, tc.sign_tx(tx, node.admin))
        i += 1
    if conn[0]:
        conn[0].close()


def must(node, tx, key):
    r = node.submit(tx, key)
    if not (isinstance(r, dict) and "seq" in r):
        raise RuntimeError("setup tx refused: %r" % r)
    return r


def setup(node):
    issuer = tc.Key()
    must(node, node.tx("account.open", node.admin, account=issuer.pk, roles=["issuer"], jurisdiction="US",
                       kyc=True), node.admin)
    must(node, node.tx("asset.create", issuer, asset=ASSET, name="crash", kind="other", currency="EUR",
                       principal=10 ** 6, units=10 ** 9, coupon_bps=0, maturity="2030-01-01", rating="C",
                       risk_weight_pct=150, rules={}), issuer)
    pairs = []
    for _ in range(TRANSFER_THREADS):
        a, b = tc.Key(), tc.Key()
        for k in (a, b):
            must(node, node.tx("account.open", node.admin, account=k.pk, roles=["investor"], jurisdiction="US",
                               kyc=True), node.admin)
            must(node, node.tx("asset.issue", issuer, asset=ASSET, to=k.pk, units=1000000), issuer)
        pairs.append((a, b))
    return pairs


def check_acked(node, sh, label):
    """Every acknowledged txid is in the journal with its seq and hash (tx.get in batches of 100)."""
    with sh.lock:
        items = sorted(sh.acked.items())
    bad = []
    with node.connect(timeout=60) as c:
        for i in range(0, len(items), 100):
            chunk = items[i:i + 100]
            c.send_obj([{"jsonrpc": "2.0", "method": "tx.get", "id": j, "params": {"txid": t}}
                        for j, (t, _) in enumerate(chunk)])
            resp = c.recv(timeout=60)
            for r in resp:
                txid, (seq, h) = chunk[r["id"]]
                got = r.get("result", {})
                if got.get("seq") != seq or got.get("hash") != h:
                    bad.append((txid, seq, h, r))
    T.check(not bad, "%s: all %d acknowledged txs present with the same seq and hash" % (label, len(items)),
            bad[:3])
    head = node.head()
    mx = max((v[0] for _, v in items), default=0)
    T.check(head["size"] >= mx, "%s: journal size %d >= highest acknowledged seq %d" % (label, head["size"], mx))


def check_history(node, sh, label):
    """account.history of every transfer account holds each of its acknowledged transfers: rows the
    daemon held in memory when it was killed were rebuilt from the journal when it started."""
    with sh.lock:
        want = {pk: set(seqs) for pk, seqs in sh.history.items()}
    missing = []
    for pk, seqs in sorted(want.items()):
        got, cursor = set(), None
        while True:
            params = {"account": pk, "limit": 1000}
            if cursor is not None:
                params["cursor"] = cursor
            page = node.call("account.history", params)
            got.update(e["seq"] for e in page["entries"])
            cursor = page["next"]
            if cursor is None:
                break
        if not seqs <= got:
            missing.append((pk[:16], sorted(seqs - got)[:5]))
    T.check(want and not missing, "%s: account.history of %d accounts lists every acknowledged transfer"
            % (label, len(want)), missing[:3])


def check_checkpoint(node, leaves):
    cp = node.call("ledger.checkpoint")
    status = node.call("node.status")
    size, root = tc.parse_checkpoint(cp["checkpoint"], node.chain, bytes.fromhex(status["node_key"]))
    T.check(1 <= size <= len(leaves) and tc.merkle_root(leaves[:size]) == root,
            "latest checkpoint (size %d) is signed by the node key and its root recomputes" % size)


def crash_under_load():
    node = tc.Node(workers=2)
    sh = Shared()
    threads = []
    try:
        node.init().start()
        pairs = setup(node)
        sh.port = node.port
        threads = [threading.Thread(target=transfer_worker, args=(sh, node, k, a, b), daemon=True)
                   for k, (a, b) in enumerate(pairs)]
        threads.append(threading.Thread(target=open_worker, args=(sh, node), daemon=True))
        for t in threads:
            t.start()
        t_end = time.monotonic() + BUDGET_S
        rebuilt_starts = 0
        for cycle in range(1, CYCLES + 1):
            if time.monotonic() > t_end:
                break
            time.sleep(RNG.uniform(0.3, 2.5))
            before = len(sh.acked)
            sh.port = None
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(10)
            T.check(node.proc.returncode == -signal.SIGKILL, "cycle %d: tranched killed with SIGKILL (%d acks so far)"
                    % (cycle, before))
            node.proc = None
            if node._conn is not None:  # the fixture's cached connection died with the daemon
                node._conn.close()
                node._conn = None
            if cycle == 1:  # the audit of a killed directory, history rows of the last second unwritten
                r = node.ctl("verify", "--datadir", node.datadir, timeout=120)
                T.eq(r.returncode, 0, "cycle 1: tranchectl verify passes on the directory as the kill left it")
                for line in r.stdout.decode("utf-8", "replace").splitlines():
                    if line.startswith("note:"):
                        T.comment("cycle 1 verify: " + line)
                if r.returncode != 0:
                    T.comment((r.stdout + r.stderr).decode("utf-8", "replace")[-3000:])
            node.start()
            T.check(True, "cycle %d: tranched restarts on the killed data directory" % cycle)
            with open(node.err_path, "rb") as f:  # "... (N replayed after the derived mark M)"
                m = re.search(rb"\((\d+) replayed after the derived mark", f.read())
                if m and int(m.group(1)) > 0:
                    rebuilt_starts += 1
            check_acked(node, sh, "cycle %d" % cycle)
            check_history(node, sh, "cycle %d" % cycle)
            sh.port = node.port
        T.check(rebuilt_starts > 0, "%d of the restarts replayed entries whose state rows the kill left unwritten"
                % rebuilt_starts)
        time.sleep(1.0)
        sh.stop.set()
        for t in threads:
            t.join(30)
        T.check(not any(t.is_alive() for t in threads), "load threads stopped")
        T.comment("%d txs acknowledged; %d answers lost to kills and resubmitted, %d of those came back as duplicates"
                  % (len(sh.acked), sh.resubmitted, sh.resolved_dup))
        T.check(len(sh.acked) > 50, "load was real: %d acknowledged txs" % len(sh.acked))
        T.check(not sh.conflicts, "no txid acknowledged with two different (seq, hash)", sh.conflicts[:3])
        T.check(not sh.unexpected, "every submission ended in a receipt", sh.unexpected[:3])
        check_acked(node, sh, "final")
        check_history(node, sh, "final")
        entries = node.all_entries(page=1000)
        ok, msg, leaves = tc.check_chain(entries)
        T.check(ok, "journal: no gaps, links, hashes and signatures recompute (%s)" % msg, msg)
        txids = [e["txid"] for e in entries]
        T.eq(len(txids), len(set(txids)), "no txid appears twice in the journal")
        check_checkpoint(node, leaves)
        T.eq(node.stop(timeout=30), 0, "tranched exits 0 on SIGTERM after the kills")
        r = node.ctl("verify", "--datadir", node.datadir, timeout=120)
        T.eq(r.returncode, 0, "tranchectl verify --datadir exits 0 on the crashed-and-restarted directory")
        if r.returncode != 0:
            T.comment((r.stdout + r.stderr).decode("utf-8", "replace")[-3000:])
    except Exception:  # noqa: BLE001
        import traceback
        T.check(False, "crash under load: no exception", traceback.format_exc() + "\n" + node.logs())
    finally:
        sh.stop.set()
        node.cleanup()


# ------------------------------------------------------------------ part 2: init

def describe(d):
    if not os.path.exists(d):
        return "absent"
    out = []
    for name in sorted(os.listdir(d)):
        out.append("%s(%d)" % (name, os.path.getsize(os.path.join(d, name))))
    return "dir: " + (", ".join(out) or "empty")


def try_daemon(tranched, d, timeout=10.0):
    """Starts tranched on d. Returns ('serves', size) / ('refused', message) / ('crashed'|'hung', text)."""
    port = tc.free_port()
    p = subprocess.Popen([tranched, "--datadir", d, "--listen", "127.0.0.1:%d" % port, "--workers", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if p.poll() is not None:
                err = p.stderr.read().decode("utf-8", "replace").strip()
                if p.returncode < 0 or "Sanitizer" in err:
                    return "crashed", "signal %d: %s" % (-p.returncode, err[-500:])
                return "refused", "exit %d: %s" % (p.returncode, err.splitlines()[-1] if err else "(no message)")
            try:
                with tc.Rpc("127.0.0.1", port, timeout=2) as c:
                    return "serves", c.call("ledger.head", {})["size"]
            except (OSError, tc.RpcError, ValueError):
                time.sleep(0.05)
        return "hung", "no answer and no exit in %.0fs" % timeout
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        p.stderr.close()


def kill_during_init():
    tranchectl, tranched = os.environ["TRANCHECTL"], os.environ["TRANCHED"]
    tmp = tempfile.mkdtemp(prefix="tranche-initkill-")
    admin = tc.Key()
    try:
        def init_cmd(d):
            return [tranchectl, "init", "--datadir", d, "--chain", tc.CHAIN, "--admin", admin.pk]
        t0 = time.monotonic()
        r = subprocess.run(init_cmd(os.path.join(tmp, "full")), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        full = time.monotonic() - t0
        T.eq(r.returncode, 0, "an uninterrupted init works (%.1f ms)" % (full * 1000))
        outcomes = {}
        for i in range(12):
            d = os.path.join(tmp, "k%d" % i)
            delay = RNG.uniform(0, full * 1.3)
            p = subprocess.Popen(init_cmd(d), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            finished = p.returncode == 0
            state = describe(d)
            if finished or state == "absent":
                kind, detail = ("finished", "") if finished else ("absent", "")
                if finished:
                    res = try_daemon(tranched, d)
                    T.check(res == ("serves", 1), "init %d finished before the kill: the daemon serves it" % i, res)
            else:
                res = try_daemon(tranched, d)
                kind, detail = res[0], res[1]
                T.check(res[0] in ("serves", "refused"),
                        "init %d killed after %.1f ms (%s): tranched serves it or refuses it, no crash/hang"
                        % (i, delay * 1000, state), res)
                if res[0] == "serves":
                    T.eq(res[1], 1, "init %d: a directory the daemon serves has exactly the genesis entry" % i)
                    v = subprocess.run([tranchectl, "verify", "--datadir", d], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, timeout=60)
                    T.eq(v.returncode, 0, "init %d: tranchectl verify passes on it" % i)
                else:
                    T.check(len(detail) > len("exit 1: ") + 10 and "(no message)" not in detail,
                            "init %d: the refusal names the problem" % i, detail)
                again = subprocess.run(init_cmd(d), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
                T.comment("init %d: re-init into the same half-made dir exits %d: %s" % (
                    i, again.returncode, again.stderr.decode("utf-8", "replace").strip()[:200]))
            T.comment("init %d killed at %.1f ms: %s -> %s %s" % (i, delay * 1000, state, kind, detail))
            outcomes.setdefault(kind, 0)
            outcomes[kind] += 1
            fresh = os.path.join(tmp, "fresh%d" % i)
            r = subprocess.run(init_cmd(fresh), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            T.eq(r.returncode, 0, "init %d: a new init into a new directory works" % i)
        T.comment("kill during init outcomes: %r" % outcomes)
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    T.comment("seed %d, %d kill cycles" % (SEED, CYCLES))
    crash_under_load()
    kill_during_init()
    T.done()


if __name__ == "__main__":
    main()
