#!/usr/bin/python3
"""test_cluster.py - three real tranched processes in a C-Raft cluster
(PROTOCOL.md sections 7 and 8), under load, through faults.

`tranchectl cluster init` makes three data directories on loopback ports;
each node runs `tranched --datadir DIR`.  Client threads submit transfers
and account.opens to the leader, following -32005 not_leader to the address
it names and resubmitting the same bytes whenever an answer was lost or its
outcome was unknown (section 2 idempotency).  Every acknowledged receipt is
recorded.  While the load runs, the test:
  1. kills the leader with SIGKILL and restarts it, CLUSTER_KILLS times;
  2. stops the leader with SIGSTOP past the election timeout, then SIGCONT;
  3. cuts a follower off by SIGSTOP of it, then lets it catch up;
  4. fills the disk of a follower (its directory is on a small tmpfs the
     test mounts; skipped where it cannot), then frees it: it catches up;
  5. runs a follower under faketime, 10 minutes ahead, and kills the leader
     so that it may lead: entry times still never decrease;
  6. wipes a follower's data (journal, raft log, checkpoint: only its config
     and key stay) and restarts it: it rebuilds genesis and catches up.
After each fault a leader must take writes again; the time from the kill to
the first receipt from a new leader is printed.  At the end, on every node:
every acknowledged txid is present with the same seq and hash; no txid is
in the journal twice; the heads (size, hash) and Merkle roots are
identical; every asset's holders sum to its issued units; holdings are
identical; node.status has the section 8 cluster object; and after a clean
stop `tranchectl verify` passes on every data directory.
Seeded (TRANCHE_TEST_SEED); CLUSTER_KILLS (default 2) and CLUSTER_LOAD_S
(default 4 per phase) make a longer run.  Prints TAP.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402
import tranche  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
SEED = int(os.environ.get("TRANCHE_TEST_SEED", "4242"))
RNG = random.Random(SEED)
KILLS = int(os.environ.get("CLUSTER_KILLS", "2"))
LOAD_S = float(os.environ.get("CLUSTER_LOAD_S", "4"))
ASSET = "CLU-1"
THREADS = 3
NODES = 3
SNAPSHOT_EVERY = 256  # raft snapshots every this many batches (the default is 4096)
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"  # the wall clock only: raft's timers stay true
SANITIZED = bool(os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"))


class ClusterNode:
    def __init__(self, cluster, ident):
        self.cluster = cluster
        self.id = ident
        self.datadir = os.path.join(cluster.tmp, "n%d" % ident)
        self.rpc_port = tc.free_port()
        self.raft_port = tc.free_port()
        self.proc = None
        self.starts = 0

    @property
    def rpc(self):
        return "127.0.0.1:%d" % self.rpc_port

    def start(self, env=None):
        self.starts += 1
        self.log_path = os.path.join(self.cluster.tmp, "n%d.%d.log" % (self.id, self.starts))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([os.environ["TRANCHED"], "--datadir", self.datadir, "--workers", "1"],
                                         env=dict(os.environ, **(env or {})),
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_up(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("node %d exited %d:\n%s" % (self.id, self.proc.returncode, self.logs()))
            try:
                self.status()
                return
            except (OSError, tc.RpcError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("node %d did not answer within %ds:\n%s" % (self.id, timeout, self.logs()))

    def connect(self, timeout=10):
        return tc.Rpc("127.0.0.1", self.rpc_port, timeout=timeout)

    def call(self, method, params=None, timeout=30):
        with self.connect(timeout) as c:
            return c.call(method, params or {})

    def status(self):
        return self.call("node.status", timeout=2)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def logs(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, n):
        self.tmp = tempfile.mkdtemp(prefix="tranche-cluster-")
        # The last node's directory lies on a small tmpfs of its own, so the
        # test can fill that disk (skipped where mounting is not allowed).
        self.small_disk = os.path.join(self.tmp, "small-disk")
        os.mkdir(self.small_disk)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", self.small_disk],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.mounted = r.returncode == 0
        self.nodes = [ClusterNode(self, i + 1) for i in range(n)]
        if self.mounted:
            self.nodes[-1].datadir = os.path.join(self.small_disk, "n%d" % n)
        self.admin_path = os.path.join(self.tmp, "admin.key")
        self.chain = tc.CHAIN
        args = [os.environ["TRANCHECTL"], "cluster", "init", "--chain", self.chain, "--admin-out", self.admin_path]
        for nd in self.nodes:
            args += ["--node", "%d=127.0.0.1:%d,%s,%s" % (nd.id, nd.raft_port, nd.rpc, nd.datadir)]
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.init_out = r.stdout.decode() + r.stderr.decode()
        if r.returncode != 0:
            raise RuntimeError("cluster init exited %d: %s" % (r.returncode, self.init_out))
        self.admin = tc.Key.load(self.admin_path)
        for nd in self.nodes:  # snapshots often enough that a wiped node must rejoin by one
            with open(os.path.join(nd.datadir, "tranche.conf"), "a") as f:
                f.write("cluster_snapshot_every = %d\n" % SNAPSHOT_EVERY)

    def vkey(self):
        m = re.search(r"^vkey (\S+)$", self.init_out, re.M)
        return m.group(1) if m else None

    def by_rpc(self, rpc):
        for nd in self.nodes:
            if nd.rpc == rpc:
                return nd
        return None

    def leader(self, timeout=15, exclude=()):
        """The node that leads and takes writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for nd in self.nodes:
                if not nd.alive() or nd in exclude:
                    continue
                try:
                    cl = nd.status().get("cluster", {})
                except (OSError, tc.RpcError, ValueError):
                    continue
                if cl.get("role") == "leader" and cl.get("taking_writes"):
                    return nd
            time.sleep(0.05)
        raise RuntimeError("no leader within %ds:\n%s" % (timeout, "\n".join(n.logs(10) for n in self.nodes)))

    def cleanup(self):
        for nd in self.nodes:
            if nd.proc and nd.proc.poll() is None:
                nd.proc.send_signal(signal.SIGCONT)
                nd.proc.kill()
                nd.proc.wait()
        if os.environ.get("TRANCHE_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.tmp)
            return
        if self.mounted:
            subprocess.run(["umount", self.small_disk])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def tx(self, type_, key, **fields):
        return tc.make_tx(type_, key, chain=self.chain, **fields)


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.acked = {}          # txid -> (seq, hash)
        self.conflicts = []
        self.unexpected = []
        self.not_leader = 0      # -32005 answers followed
        self.unknown = 0         # answers lost or outcome unknown: resubmitted
        self.last_ack = 0.0      # monotonic time of the latest receipt
        self.last_ack_node = None  # and the node that sent it


def submit(cluster, sh, conn_box, b, sig, deadline=None):
    """Submits one tx until it has a definite answer, following the leader."""
    params = {"tx": b.decode(), "sig": sig}
    target = conn_box[1]
    while not sh.stop.is_set() and (deadline is None or time.monotonic() < deadline):
        if target is None or not target.alive():
            alive = [n for n in cluster.nodes if n.alive()]
            target = RNG.choice(alive) if alive else None
            if target is None:
                time.sleep(0.05)
                continue
        try:
            if conn_box[0] is None or conn_box[1] is not target:
                if conn_box[0] is not None:
                    conn_box[0].close()
                conn_box[0], conn_box[1] = target.connect(timeout=5), target
            r = conn_box[0].result_or_error("tx.submit", params)
        except (OSError, tc.RpcError, ValueError, socket.timeout):
            if conn_box[0] is not None:
                conn_box[0].close()
            conn_box[0], target = None, None
            with sh.lock:
                sh.unknown += 1
            time.sleep(0.05)
            continue
        if isinstance(r, dict) and "seq" in r:
            with sh.lock:
                key = (r["seq"], r["hash"])
                old = sh.acked.get(r["txid"])
                if old is not None and old != key:
                    sh.conflicts.append((r["txid"], old, key))
                sh.acked[r["txid"]] = key
                sh.last_ack = time.monotonic()
                sh.last_ack_node = target.id
            return r
        if isinstance(r, dict) and r.get("code") == -32005:
            with sh.lock:
                sh.not_leader += 1
            leader = (r.get("data") or {}).get("leader")
            nxt = cluster.by_rpc(leader) if leader else None
            target = nxt if nxt is not None and nxt.alive() else None
            if target is None:
                time.sleep(0.05)
            continue
        if isinstance(r, dict) and r.get("code") in (-32002, -32603):
            time.sleep(0.05)
            continue
        with sh.lock:
            sh.unexpected.append(r)
        return r
    return None


def must(cluster, sh, tx, key):
    b = tc.tx_bytes(tx)
    r = submit(cluster, sh, [None, None], b, tc.sign_tx(b, key), deadline=time.monotonic() + 60)
    if not (isinstance(r, dict) and "seq" in r):
        raise RuntimeError("setup tx not accepted: %r" % (r,))
    return r


def setup(cluster, sh):
    issuer = tc.Key()
    must(cluster, sh, cluster.tx("account.open", cluster.admin, account=issuer.pk, roles=["issuer"],
                                 jurisdiction="US", kyc=True), cluster.admin)
    must(cluster, sh, cluster.tx("asset.create", issuer, asset=ASSET, name="cluster", kind="other",
                                 currency="EUR", principal=10 ** 6, units=10 ** 9, coupon_bps=0,
                                 maturity="2030-01-01", rating="C", risk_weight_pct=150, rules={}), issuer)
    pairs = []
    for _ in range(THREADS):
        a, b = tc.Key(), tc.Key()
        for k in (a, b):
            must(cluster, sh, cluster.tx("account.open", cluster.admin, account=k.pk, roles=["investor"],
                                         jurisdiction="US", kyc=True), cluster.admin)
            must(cluster, sh, cluster.tx("asset.issue", issuer, asset=ASSET, to=k.pk, units=1000000), issuer)
        pairs.append((a, b))
    return pairs


def transfer_worker(cluster, sh, k, a, b):
    box = [None, None]
    i = 0
    while not sh.stop.is_set():
        src, dst = (a, b) if i % 2 == 0 else (b, a)
        tx = tc.tx_bytes(cluster.tx("transfer", src, id="x%d-%d" % (k, i), asset=ASSET, to=dst.pk, units=1))
        submit(cluster, sh, box, tx, tc.sign_tx(tx, src))
        i += 1
    if box[0]:
        box[0].close()


def open_worker(cluster, sh):
    box = [None, None]
    i = 0
    while not sh.stop.is_set():
        tx = tc.tx_bytes(cluster.tx("account.open", cluster.admin, id="open-%d" % i, account=tc.Key().pk,
                                    roles=["investor"], jurisdiction="DE", kyc=True))
        submit(cluster, sh, box, tx, tc.sign_tx(tx, cluster.admin))
        i += 1
    if box[0]:
        box[0].close()


def wait_acks_after(sh, t0, timeout=20, not_from=None):
    """Seconds from t0 to the first receipt after it (from another node than
    not_from), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sh.lock:
            if sh.last_ack > t0 and (not_from is None or sh.last_ack_node != not_from):
                return sh.last_ack - t0
        time.sleep(0.005)
    return None


def disk_full(cluster, sh):
    """Fills the disk of the node on the small tmpfs; the others go on; once
    there is room again it catches up (restarted if it had to stop)."""
    if not cluster.mounted:
        T.comment("disk full: skipped (cannot mount a tmpfs here)")
        return
    nd = cluster.nodes[-1]
    if cluster.leader() is nd:
        subprocess.run([os.environ["TRANCHECTL"], "cluster", "transfer", "--datadir", nd.datadir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    filler = os.path.join(cluster.small_disk, "filler")
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    T.check(wait_acks_after(sh, time.monotonic(), not_from=nd.id) is not None,
            "writes go on while a follower's disk is full")
    time.sleep(LOAD_S / 2)
    os.unlink(filler)
    target = cluster.leader().call("ledger.head")["size"]
    deadline = time.monotonic() + 15
    caught_up = False
    while time.monotonic() < deadline and not caught_up:
        try:
            caught_up = nd.call("ledger.head", timeout=5)["size"] >= target
        except (OSError, tc.RpcError, ValueError):
            pass
        time.sleep(0.2)
    if not caught_up:
        T.comment("the node with the full disk did not resume by itself; restarting it\n" + nd.logs(8))
        nd.stop()
        nd.start()
        nd.wait_up(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not caught_up:
            try:
                caught_up = nd.call("ledger.head", timeout=5)["size"] >= target
            except (OSError, tc.RpcError, ValueError):
                pass
            time.sleep(0.2)
    T.check(caught_up, "the follower whose disk was full catches up once there is room", nd.logs(20))


def clock_skew(cluster, sh):
    """Restarts a follower under libfaketime, its clock 10 minutes ahead, and
    makes it likely to lead: entry times never decrease (checked with the
    chain at the end) and the cluster goes on."""
    ld = cluster.leader()
    nd = next(n for n in cluster.nodes if n is not ld)
    if not os.path.exists(FAKETIME_LIB) or SANITIZED:
        T.comment("clock skew: skipped (%s)" % ("no libfaketime" if not SANITIZED
                                                 else "libfaketime is not preloaded under a sanitizer runtime"))
        return
    nd.stop()
    nd.start(env={"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+600s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    nd.wait_up()
    ld.kill()
    T.check(wait_acks_after(sh, time.monotonic(), not_from=ld.id) is not None,
            "writes go on with one node's clock 10 minutes ahead (faketime)")
    ld.start()
    ld.wait_up()
    time.sleep(LOAD_S / 2)
    nd.stop()
    nd.start()
    nd.wait_up()


def converge(cluster, timeout=60):
    """Waits until every node reports the same head; returns the heads."""
    deadline = time.monotonic() + timeout
    heads = {}
    while time.monotonic() < deadline:
        heads = {}
        for nd in cluster.nodes:
            try:
                h = nd.call("ledger.head", timeout=10)
                heads[nd.id] = (h["size"], h["hash"])
            except (OSError, tc.RpcError, ValueError):
                heads[nd.id] = None
        if len(set(heads.values())) == 1 and None not in heads.values():
            return heads
        time.sleep(0.2)
    return heads


def entries_of(nd):
    out, frm = [], 1
    with nd.connect(timeout=60) as c:
        while frm is not None:
            r = c.call("ledger.entries", {"from": frm, "limit": 1000})
            out.extend(r["entries"])
            frm = r["next"]
    return out


def holders_of(nd):
    out, cursor = [], None
    with nd.connect(timeout=60) as c:
        while True:
            p = {"asset": ASSET, "limit": 1000}
            if cursor is not None:
                p["cursor"] = cursor
            r = c.call("asset.holders", p)
            out.extend((h["account"], h["units"]) for h in r["holders"])
            cursor = r["next"]
            if cursor is None:
                return out


def final_checks(cluster, sh):
    heads = converge(cluster)
    T.check(len(set(heads.values())) == 1 and None not in heads.values(),
            "every node reports the same head (size, hash)", heads)
    with sh.lock:
        acked = dict(sh.acked)
    T.check(not sh.conflicts, "no txid acknowledged twice with different receipts", sh.conflicts[:3])
    T.check(not sh.unexpected, "no unexpected answers", sh.unexpected[:3])
    journals = {}
    for nd in cluster.nodes:
        ents = entries_of(nd)
        journals[nd.id] = [(e["seq"], e["hash"]) for e in ents]
        ok, msg, _ = tc.check_chain(ents)
        T.check(ok, "node %d: the chain verifies (section 3): %s" % (nd.id, msg))
        txids = [e["txid"] for e in ents]
        T.check(len(txids) == len(set(txids)), "node %d: no txid is in the journal twice" % nd.id)
        by_txid = {e["txid"]: (e["seq"], e["hash"]) for e in ents}
        missing = [t for t, v in acked.items() if by_txid.get(t) != v]
        T.check(not missing, "node %d: all %d acknowledged txs present with their seq and hash" % (nd.id, len(acked)),
                missing[:3])
    first = journals[cluster.nodes[0].id]
    T.check(all(j == first for j in journals.values()), "the journals are identical entry for entry")
    vkey = cluster.vkey()
    for nd in cluster.nodes:
        cp = nd.call("ledger.checkpoint")
        try:
            tranche.open_checkpoint(cp["checkpoint"] if isinstance(cp, dict) else cp, tranche.Vkey.parse(vkey))
            ok, why = True, ""
        except Exception as e:  # noqa: BLE001
            ok, why = False, repr(e)
        T.check(ok, "node %d: its checkpoint verifies with the verifier key cluster init printed" % nd.id,
                why + " " + repr(cp)[:300])
    size = heads[cluster.nodes[0].id][0]
    proofs = set()
    for nd in cluster.nodes:
        r = nd.call("ledger.consistency", {"from": 1, "to": size})
        proofs.add(tuple(r["path"]))
    T.check(len(proofs) == 1, "the Merkle trees are identical (same consistency proof 1..%d everywhere)" % size)
    holdings = {nd.id: sorted(holders_of(nd)) for nd in cluster.nodes}
    T.check(all(h == holdings[1] for h in holdings.values()), "holdings are identical on every node")
    for nd in cluster.nodes:
        a = nd.call("asset.get", {"asset": ASSET})
        total = sum(int(u) for _, u in holdings[nd.id])
        T.check(total == int(a["issued"]), "node %d: holders sum to the issued units (%d)" % (nd.id, total))


def check_status(cluster):
    ld = cluster.leader()
    st = ld.status()["cluster"]
    T.check(all(k in st for k in ("id", "role", "term", "leader", "commit", "applied", "nodes")),
            "node.status has the section 8 cluster object", st)
    T.check(st["leader"] == ld.id and st["role"] == "leader", "the leader names itself")
    T.check(sorted(n["id"] for n in st["nodes"]) == [1, 2, 3] and
            all(set(("id", "raft", "rpc", "role")) <= set(n) for n in st["nodes"]),
            "cluster.nodes lists every node with raft, rpc and role", st["nodes"])
    follower = next(n for n in cluster.nodes if n is not ld and n.alive())
    fs = follower.status()["cluster"]
    T.check(fs["role"] == "follower" and fs["leader"] == ld.id, "a follower names the leader", fs)
    b = tc.tx_bytes(cluster.tx("account.open", cluster.admin, account=tc.Key().pk, roles=["investor"],
                               jurisdiction="US", kyc=True))
    with follower.connect() as c:
        r = c.result_or_error("tx.submit", {"tx": b.decode(), "sig": tc.sign_tx(b, cluster.admin)})
    T.check(isinstance(r, dict) and r.get("code") == -32005 and (r.get("data") or {}).get("leader") == ld.rpc,
            "a follower answers tx.submit with -32005 naming the leader's RPC address", r)
    h = follower.call("ledger.head")
    T.check(isinstance(h.get("size"), int) and h["size"] >= 1, "a follower serves queries (ledger.head)")
    acct = tc.Key().pk
    r = subprocess.run([os.environ["TRANCHECTL"], "account", "open", "--key", cluster.admin_path, "--account", acct,
                        "--roles", "investor", "--jurisdiction", "US", "--kyc", "true", "--rpc", follower.rpc, "--json"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(r.returncode == 0 and b'"seq"' in r.stdout and ld.rpc.encode() in r.stderr,
            "tranchectl pointed at a follower follows not_leader to the leader and prints the receipt",
            (r.returncode, r.stdout[-300:], r.stderr[-500:]))
    r = subprocess.run([os.environ["TRANCHECTL"], "cluster", "status", "--rpc", follower.rpc],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    T.check(r.returncode == 0 and b"leader" in r.stdout, "tranchectl cluster status shows the cluster",
            (r.returncode, r.stdout[-500:], r.stderr[-300:]))


def main():
    cluster = Cluster(NODES)
    try:
        T.check(re.search(r"[0-9a-f]{64}", cluster.init_out) is not None, "cluster init prints the admin key")
        for nd in cluster.nodes:
            nd.start()
        for nd in cluster.nodes:
            nd.wait_up()
        t0 = time.monotonic()
        ld = cluster.leader()
        T.comment("first leader: node %d after %.2fs" % (ld.id, time.monotonic() - t0))
        sh = Shared()
        pairs = setup(cluster, sh)
        check_status(cluster)
        threads = [threading.Thread(target=transfer_worker, args=(cluster, sh, k, a, b))
                   for k, (a, b) in enumerate(pairs)]
        threads.append(threading.Thread(target=open_worker, args=(cluster, sh)))
        for t in threads:
            t.start()
        try:
            time.sleep(LOAD_S)
            failovers = []
            for k in range(KILLS):
                ld = cluster.leader()
                t_kill = time.monotonic()
                ld.kill()
                took = wait_acks_after(sh, t_kill, not_from=ld.id)
                failovers.append(took)
                T.check(took is not None, "kill -9 of the leader (node %d, round %d): writes resume" % (ld.id, k + 1))
                time.sleep(LOAD_S / 2)
                ld.start()
                ld.wait_up()
                time.sleep(LOAD_S / 2)
            T.comment("failover (kill -9 of the leader to the next receipt), s: %s"
                      % ", ".join("%.2f" % f if f is not None else "none" for f in failovers))
            ld = cluster.leader()
            t_stop = time.monotonic()
            ld.kill(signal.SIGSTOP)
            took = wait_acks_after(sh, t_stop, not_from=ld.id)
            T.check(took is not None, "SIGSTOP of the leader (node %d): another takes over" % ld.id)
            time.sleep(1.0)
            ld.kill(signal.SIGCONT)
            time.sleep(LOAD_S / 2)
            ld = cluster.leader()
            f = next(n for n in cluster.nodes if n is not ld)
            f.kill(signal.SIGSTOP)
            time.sleep(2.5)
            f.kill(signal.SIGCONT)
            T.check(wait_acks_after(sh, time.monotonic()) is not None, "writes go on while a follower was cut off")
            disk_full(cluster, sh)
            clock_skew(cluster, sh)
            ld = cluster.leader()
            f = next(n for n in cluster.nodes if n is not ld)
            f.stop()
            for name in os.listdir(f.datadir):
                if name not in ("tranche.conf", "node.key"):
                    p = os.path.join(f.datadir, name)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
            f.start()
            f.wait_up(timeout=30)
            time.sleep(LOAD_S)
            with open(f.log_path, "rb") as lf:
                rejoin_log = lf.read().decode("utf-8", "replace")
            T.check("snapshot installed" in rejoin_log and "re-created the cluster's genesis entry" in rejoin_log,
                    "the wiped node re-created genesis and rejoined by a snapshot", f.logs(20))
        finally:
            sh.stop.set()
            for t in threads:
                t.join(timeout=60)
        T.comment("acknowledged %d txs; %d not_leader answers followed; %d answers lost or unknown, resubmitted"
                  % (len(sh.acked), sh.not_leader, sh.unknown))
        T.check(len(sh.acked) > 50, "the load made progress (%d receipts)" % len(sh.acked))
        final_checks(cluster, sh)
        for nd in cluster.nodes:
            rc = nd.stop()
            T.check(rc == 0, "node %d stops cleanly (exit %r)" % (nd.id, rc), nd.logs())
        reports = []
        for path in sorted(os.listdir(cluster.tmp)):
            if path.endswith(".log"):
                with open(os.path.join(cluster.tmp, path), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                reports += ["%s: %s" % (path, m) for m in re.findall(
                    r"WARNING: ThreadSanitizer.*|ERROR: AddressSanitizer.*|runtime error:.*", text)]
        T.check(not reports, "no sanitizer reports in any node's log", "\n".join(reports[:10]))
        for nd in cluster.nodes:
            r = subprocess.run([os.environ["TRANCHECTL"], "verify", "--datadir", nd.datadir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
            T.check(r.returncode == 0, "tranchectl verify passes on node %d's directory" % nd.id,
                    r.stdout.decode()[-2000:])
    except Exception:  # noqa: BLE001
        import traceback
        T.check(False, "cluster scenario ran without an exception", traceback.format_exc() + "\n" +
                "\n".join("--- node %d\n%s" % (n.id, n.logs(40)) for n in cluster.nodes))
    finally:
        cluster.cleanup()
    T.done()


main()
