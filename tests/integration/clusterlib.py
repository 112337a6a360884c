"""clusterlib.py - what the cluster integration tests share: real tranched
processes made by `tranchectl cluster init` (PROTOCOL.md sections 7 and 8),
client threads that follow the leader, and the final checks on every node.

Used by test_cluster.py (loopback ports, process faults) and
test_cluster_partition.py (network namespaces, link cuts).  One TAP producer
(T) and one seeded RNG (TRANCHE_TEST_SEED) for the process that imports it.

Clients: submit() sends a tx to a node, follows -32005 not_leader to the
address it names and resends the same bytes whenever an answer was lost or
its outcome was unknown (section 2 idempotency).  Every receipt goes into
Shared.acked (txid -> (seq, hash)) and Shared.log (time, node, txid, seq).
final_checks() then asks of every node: every acknowledged txid present with
the same seq and hash; no txid twice; identical heads, journals, Merkle trees
and holdings; units conserved; checkpoints that verify with the cluster's
vkey.  stop_and_audit(): clean stops, no sanitizer report, and
`tranchectl verify` on every directory.
"""
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
SEED = int(os.environ.get("TRANCHE_TEST_SEED", "4242"))
RNG = random.Random(SEED)
ASSET = "CLU-1"
THREADS = 3
SANITIZED = bool(os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"))


class ClusterNode:
    """One tranched.  host is the address its raft and RPC ports are on;
    prefix is put before the command line (e.g. `ip netns exec NS`)."""

    def __init__(self, cluster, ident, host="127.0.0.1", raft_port=None, rpc_port=None, prefix=()):
        self.cluster = cluster
        self.id = ident
        self.host = host
        self.prefix = list(prefix)
        self.datadir = os.path.join(cluster.tmp, "n%d" % ident)
        self.rpc_port = rpc_port or tc.free_port()
        self.raft_port = raft_port or tc.free_port()
        self.proc = None
        self.starts = 0

    @property
    def rpc(self):
        return "%s:%d" % (self.host, self.rpc_port)

    @property
    def raft(self):
        return "%s:%d" % (self.host, self.raft_port)

    def start(self, env=None):
        self.starts += 1
        self.log_path = os.path.join(self.cluster.tmp, "n%d.%d.log" % (self.id, self.starts))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.prefix + [os.environ["TRANCHED"], "--datadir", self.datadir,
                                                        "--workers", "1"],
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
        return tc.Rpc(self.host, self.rpc_port, timeout=timeout)

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
    """n nodes made by `tranchectl cluster init` in a temp directory.
    addrs: one (host, raft_port, rpc_port, prefix) per node, or None for
    loopback on free ports.  small_disk: the last node's directory lies on
    a small tmpfs of its own, so a test can fill that disk (self.mounted
    says whether it could be mounted).  snapshot_every: raft snapshots every
    this many batches (the default is 4096)."""

    def __init__(self, n, addrs=None, small_disk=False, snapshot_every=None):
        self.tmp = tempfile.mkdtemp(prefix="tranche-cluster-")
        self.mounted = False
        if small_disk:
            self.small_disk = os.path.join(self.tmp, "small-disk")
            os.mkdir(self.small_disk)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", self.small_disk],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.mounted = r.returncode == 0
        if addrs is None:
            self.nodes = [ClusterNode(self, i + 1) for i in range(n)]
        else:
            self.nodes = [ClusterNode(self, i + 1, host=h, raft_port=rp, rpc_port=pp, prefix=pre)
                          for i, (h, rp, pp, pre) in enumerate(addrs)]
        if self.mounted:
            self.nodes[-1].datadir = os.path.join(self.small_disk, "n%d" % n)
        self.admin_path = os.path.join(self.tmp, "admin.key")
        self.chain = tc.CHAIN
        args = [os.environ["TRANCHECTL"], "cluster", "init", "--chain", self.chain, "--admin-out", self.admin_path]
        for nd in self.nodes:
            args += ["--node", "%d=%s,%s,%s" % (nd.id, nd.raft, nd.rpc, nd.datadir)]
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.init_out = r.stdout.decode() + r.stderr.decode()
        if r.returncode != 0:
            raise RuntimeError("cluster init exited %d: %s" % (r.returncode, self.init_out))
        self.admin = tc.Key.load(self.admin_path)
        for nd in self.nodes:
            with open(os.path.join(nd.datadir, "tranche.conf"), "a") as f:
                if snapshot_every:
                    f.write("cluster_snapshot_every = %d\n" % snapshot_every)
                if SANITIZED:  # a sanitizer build on two cores starves nodes for longer than 300 ms
                    f.write("cluster_election_timeout = 1000\n")

    def start_all(self):
        """Starts every node; returns the first leader that takes writes."""
        for nd in self.nodes:
            nd.start()
        for nd in self.nodes:
            nd.wait_up()
        return self.leader()

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
    """What the client threads share.  rpc_timeout bounds a connect and an
    answer; avoid_failed makes a client that lost its node (timeout, refused,
    reset) pick another one, as a client with a list of nodes would."""

    def __init__(self, rpc_timeout=5, avoid_failed=False):
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rpc_timeout = rpc_timeout
        self.avoid_failed = avoid_failed
        self.acked = {}          # txid -> (seq, hash)
        self.log = []            # (monotonic time, node id, txid, seq) of every receipt
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
    failed = None
    while not sh.stop.is_set() and (deadline is None or time.monotonic() < deadline):
        if target is None or not target.alive():
            alive = [n for n in cluster.nodes if n.alive()]
            if sh.avoid_failed and failed is not None and len(alive) > 1:
                alive = [n for n in alive if n is not failed]
            target = RNG.choice(alive) if alive else None
            if target is None:
                time.sleep(0.05)
                continue
        try:
            if conn_box[0] is None or conn_box[1] is not target:
                if conn_box[0] is not None:
                    conn_box[0].close()
                conn_box[0], conn_box[1] = target.connect(timeout=sh.rpc_timeout), target
            r = conn_box[0].result_or_error("tx.submit", params)
        except (OSError, tc.RpcError, ValueError, socket.timeout):
            if conn_box[0] is not None:
                conn_box[0].close()
            conn_box[0], failed, target = None, target, None
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
                sh.log.append((sh.last_ack, target.id, r["txid"], r["seq"]))
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


def start_load(cluster, sh, pairs):
    """THREADS transfer workers and one account.open worker; returns the threads."""
    threads = [threading.Thread(target=transfer_worker, args=(cluster, sh, k, a, b))
               for k, (a, b) in enumerate(pairs)]
    threads.append(threading.Thread(target=open_worker, args=(cluster, sh)))
    for t in threads:
        t.start()
    return threads


def stop_load(sh, threads):
    sh.stop.set()
    for t in threads:
        t.join(timeout=60)


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


def reaches(nd, size, timeout):
    """True once the node's journal is at least size within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if nd.call("ledger.head", timeout=5)["size"] >= size:
                return True
        except (OSError, tc.RpcError, ValueError):
            pass
        time.sleep(0.2)
    return False


def fill_disk(path):
    """Fills the filesystem of path to its last page; returns the file."""
    filler = os.path.join(path, "filler")
    with open(filler, "ab", buffering=0) as out:
        for chunk in (1 << 20, 4096):  # quickly, then to the last page
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


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
    T.check(all(h == holdings[cluster.nodes[0].id] for h in holdings.values()), "holdings are identical on every node")
    for nd in cluster.nodes:
        a = nd.call("asset.get", {"asset": ASSET})
        total = sum(int(u) for _, u in holdings[nd.id])
        T.check(total == int(a["issued"]), "node %d: holders sum to the issued units (%d)" % (nd.id, total))
    return journals


def stop_and_audit(cluster):
    """Stops every node (exit 0 expected), looks for sanitizer reports in
    every log, and runs `tranchectl verify` on every data directory."""
    for nd in cluster.nodes:
        rc = nd.stop()
        T.check(rc == 0, "node %d stops cleanly (exit %r)" % (nd.id, rc), nd.logs())
    reports = []
    for path in sorted(os.listdir(cluster.tmp)):
        if path.endswith(".log"):
            with open(os.path.join(cluster.tmp, path), "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            for i, line in enumerate(lines):
                if re.search(r"WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:", line):
                    # the report with its stacks: what a CI log needs to find the cause
                    reports.append("%s:\n%s" % (path, "\n".join(lines[i:i + 40])))
    T.check(not reports, "no sanitizer reports in any node's log", "\n".join(reports[:2]))
    for nd in cluster.nodes:
        r = subprocess.run([os.environ["TRANCHECTL"], "verify", "--datadir", nd.datadir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        T.check(r.returncode == 0, "tranchectl verify passes on node %d's directory" % nd.id,
                r.stdout.decode()[-2000:])


def scenario_failed(cluster):
    """One failing test point with the traceback and every node's log tail."""
    import traceback
    T.check(False, "cluster scenario ran without an exception", traceback.format_exc() + "\n" +
            "\n".join("--- node %d\n%s" % (n.id, n.logs(40)) for n in cluster.nodes))
