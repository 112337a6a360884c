#!/usr/bin/python3
"""test_cluster_cli.py - the operator's side of cluster mode (PROTOCOL.md sections 7 and 8).

`tranchectl cluster init`: every DIR made, one node key, byte-identical genesis
entries (checked against an independent recomputation), configs that
`tranched --check` accepts, the printed verifier key verifying a checkpoint of
every node's journal (`checkpoint verify` and `verify --checkpoint`), --json,
and each refusal with nothing left behind.  `cluster status` against a single
node (exit 1) and against a stand-in JSON-RPC server that answers node.status
with a cluster object; `cluster transfer|add|remove` against a stand-in control
socket that records what it was asked.  No clustered daemon runs here: the
daemon side is tested with it.
Standard library (+ trclient); prints TAP.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402
from tranche import verify as tverify  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)
CTL = os.environ["TRANCHECTL"]
TRANCHED = os.environ["TRANCHED"]
CHAIN = "cluster.example/cli"


def ctl(*args, timeout=60):
    r = subprocess.run([CTL] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def exits(res, code, msg, stderr_has=None, stdout_has=None):
    rc, out, err = res
    good = rc == code and (stderr_has is None or stderr_has in err) and (stdout_has is None or stdout_has in out)
    return T.check(good, msg, "exit %d (want %d)\nstdout: %s\nstderr: %s" % (rc, code, out[-2000:], err[-2000:]))


def node_opt(i, tmp, name=None, raft=None, rpc=None):
    return "--node=%d=%s,%s,%s" % (i, raft or "127.0.0.1:%d" % (17800 + i), rpc or "127.0.0.1:%d" % (17700 + i),
                                   os.path.join(tmp, name or "n%d" % i))


def entries(d):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(d, "tranche.db"), uri=True)
    try:
        return db.execute("SELECT seq, time, prev, hash, txid, sig, tx FROM entries ORDER BY seq").fetchall()
    finally:
        db.close()


def checkpoint_note(key, size, root):
    """A C2SP checkpoint of the journal at `size` with `root`, signed by `key` (PROTOCOL.md section 3)."""
    body = "%s\n%d\n%s\n" % (CHAIN, size, base64.b64encode(root).decode())
    kid = tverify.key_id(CHAIN, key.pk_bytes)
    sig = base64.b64encode(kid + key.sign(body.encode())).decode()
    return "%s\n\u2014 %s %s\n" % (body, CHAIN, sig)


# ---------------------------------------------------------------- cluster init

def init_cases(tmp):
    admin_path = os.path.join(tmp, "admin.key")
    # Out of id order on purpose: the configs list nodes in id order.
    rc, out, err = r = ctl("cluster", "init", "--chain", CHAIN, "--admin-out", admin_path,
                           node_opt(3, tmp), node_opt(1, tmp), node_opt(2, tmp))
    if not exits(r, 0, "cluster init of three nodes succeeds"):
        return
    admin = tc.Key.load(admin_path)
    lines = out.splitlines()
    T.eq(len(lines), 2, "cluster init prints two lines")
    T.eq(lines[0], "admin " + admin.pk, "line 1: `admin PUBKEY`, the key in --admin-out")
    T.eq(stat.S_IMODE(os.stat(admin_path).st_mode), 0o600, "the admin key file is mode 0600")
    vkey = lines[1][len("vkey "):] if len(lines) > 1 and lines[1].startswith("vkey ") else None
    T.check(vkey is not None, "line 2: `vkey VKEY`", out)
    dirs = [os.path.join(tmp, "n%d" % i) for i in (1, 2, 3)]
    keys = []
    for i, d in enumerate(dirs, 1):
        T.eq(stat.S_IMODE(os.stat(d).st_mode), 0o700, "node %d: DIR is mode 0700" % i)
        T.eq(sorted(os.listdir(d)), ["node.key", "tranche.conf", "tranche.db"],
             "node %d: DIR holds node.key, tranche.conf and tranche.db, nothing else" % i)
        keys.append(tc.Key.load(os.path.join(d, "node.key")))
    T.check(len({k.pk for k in keys}) == 1, "every node holds the one node key")
    node = keys[0]
    T.eq(vkey, tc.vkey_of(CHAIN, node.pk_bytes)[0], "the printed vkey is the node key's, named by the chain")

    # One genesis entry, byte for byte, recomputed from PROTOCOL.md sections 3 and 4.
    rows = [entries(d) for d in dirs]
    T.check(all(len(x) == 1 for x in rows), "every journal holds exactly the genesis entry")
    T.check(rows[0] == rows[1] == rows[2], "the genesis rows are identical on every node (hash, time, tx, sig)")
    seq, time_ms, prev, hsh, txid, sig, tx = rows[0][0]
    want_tx = json.dumps({"type": "genesis", "chain": CHAIN, "signer": node.pk, "id": "genesis", "admin": admin.pk},
                         separators=(",", ":")).encode()
    T.eq(bytes(tx), want_tx, "the genesis tx bytes are exactly section 4's")
    T.check(tc.verify_sig(node.pk, bytes(sig), tc.TX_DOMAIN + want_tx), "the node key signed it")

    want_txid = hashlib.sha256(want_tx).digest()
    T.eq(bytes(txid), want_txid, "its txid is the SHA-256 of the tx bytes")
    T.eq((seq, bytes(prev)), (1, bytes(32)), "it is entry 1, with a zero prev")
    T.eq(bytes(hsh), tc.entry_hash(1, time_ms, bytes(32), want_txid, bytes(sig)), "its hash is section 3's entry hash")

    # Each config: the cluster keys, tranched accepts it.
    for i, d in enumerate(dirs, 1):
        with open(os.path.join(d, "tranche.conf")) as f:
            text = f.read()
        keys_ = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
        T.check("cluster_id = %d" % i in keys_ and "listen = 127.0.0.1:%d" % (17700 + i) in keys_,
                "node %d: config has its cluster_id and listen = its rpc address" % i, text)
        T.eq([ln for ln in keys_ if ln.startswith("cluster_node")],
             ["cluster_node = %d 127.0.0.1:%d 127.0.0.1:%d" % (j, 17800 + j, 17700 + j) for j in (1, 2, 3)],
             "node %d: config lists every node in id order" % i)
        T.eq([ln for ln in keys_ if ln.startswith("cluster_genesis")],
             ["cluster_genesis = %s %s %d" % (CHAIN, admin.pk, time_ms)],
             "node %d: config holds the genesis inputs" % i)
        p = subprocess.run([TRANCHED, "--datadir", d, "--check"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        T.check(p.returncode == 0 and b"configuration OK" in p.stdout,
                "node %d: tranched --check prints configuration OK" % i, p.stdout + p.stderr)

    # The printed vkey verifies a checkpoint of every node's journal.
    note = checkpoint_note(node, 1, bytes(hsh))
    cp = os.path.join(tmp, "cp")
    with open(cp, "w") as f:
        f.write(note)
    exits(ctl("checkpoint", "verify", cp, "--vkey", vkey), 0, "checkpoint verify accepts the node key's checkpoint")
    for i, d in enumerate(dirs, 1):
        exits(ctl("verify", "--datadir", d, "--checkpoint", cp, "--vkey", vkey, "--quiet"), 0,
              "node %d: verify --checkpoint with the printed vkey passes" % i, stdout_has="OK")
    other = os.path.join(tmp, "cp.other")
    with open(other, "w") as f:
        f.write(checkpoint_note(tc.Key(), 1, bytes(hsh)))
    exits(ctl("checkpoint", "verify", other, "--vkey", vkey), 1, "another key's checkpoint does not verify")

    # --admin PUBKEY and --json.
    t2 = os.path.join(tmp, "json")
    os.mkdir(t2)
    r = ctl("cluster", "init", "--chain", CHAIN, "--admin", admin.pk, "--json",
            *[node_opt(i, t2) for i in (1, 2, 3, 4, 5)])
    exits(r, 0, "cluster init --admin PUBKEY --json of five nodes succeeds")
    try:
        j = json.loads(r[1])
    except ValueError:
        j = {}
    T.eq((j.get("chain"), j.get("admin"), [n.get("id") for n in j.get("nodes", [])]),
         (CHAIN, admin.pk, [1, 2, 3, 4, 5]), "--json: chain, the given admin key, the nodes")
    k2 = tc.Key.load(os.path.join(t2, "n1", "node.key"))
    T.eq(j.get("vkey"), tc.vkey_of(CHAIN, k2.pk_bytes)[0], "--json: the vkey of the new node key")
    T.check(k2.pk != node.pk, "a new cluster gets a new node key")
    T.check(isinstance(j.get("genesis_ms"), int) and j["nodes"][4].get("datadir") == os.path.join(t2, "n5")
            and j["nodes"][4].get("raft") == "127.0.0.1:17805" and j["nodes"][4].get("rpc") == "127.0.0.1:17705",
            "--json: genesis time and each node's addresses and DIR", j)


def refusal_cases(tmp):
    base = os.path.join(tmp, "refusals")
    os.mkdir(base)
    key_path = os.path.join(base, "admin.key")

    def refused(code, msg, *args, stderr_has=None):
        r = ctl("cluster", "init", "--chain", CHAIN, "--admin-out", key_path, *args)
        exits(r, code, msg, stderr_has=stderr_has)
        T.eq(sorted(os.listdir(base)), [], "  ... and left nothing behind (%s)" % msg)

    n = [node_opt(i, base) for i in range(1, 9)]
    refused(2, "two nodes are refused", n[0], n[1], stderr_has="3 to 7 nodes")
    refused(2, "eight nodes are refused", *n, stderr_has="3 to 7 nodes")
    refused(2, "a duplicate id is refused", n[0], n[1], node_opt(2, base, name="x"),
            stderr_has="node id 2 is given twice")
    refused(2, "a duplicate raft address is refused", n[0], n[1], node_opt(3, base, raft="127.0.0.1:17801"),
            stderr_has="address 127.0.0.1:17801 is given twice")
    refused(2, "a raft address that is another node's rpc address is refused", n[0], n[1],
            node_opt(3, base, raft="127.0.0.1:17701"), stderr_has="is given twice (node 1 rpc and node 3 raft)")
    refused(2, "a duplicate DIR is refused", n[0], n[1], node_opt(3, base, name="n1"), stderr_has="have one DIR")
    refused(2, "one DIR spelt two ways is refused", n[0], n[1], node_opt(3, base, name="./n1"),
            stderr_has="have one DIR")
    for bad, why in (("--node=1=127.0.0.1:17801,127.0.0.1:17701", "no DIR"),
                     ("--node=127.0.0.1:17801,127.0.0.1:17701,x", "no ID="),
                     ("--node=1=127.0.0.1:17801,127.0.0.1:17701,", "an empty DIR"),
                     ("--node=0=127.0.0.1:17801,127.0.0.1:17701,x", "id 0"),
                     ("--node=01=127.0.0.1:17801,127.0.0.1:17701,x", "id 01"),
                     ("--node=1=127.0.0.1,127.0.0.1:17701,x", "a raft address without a port"),
                     ("--node=1=127.0.0.1:17801,127.0.0.1:70000,x", "an rpc port over 65535"),
                     ("--node=1=127.0.0.1:17801,127.0.0.1:0,x", "rpc port 0")):
        refused(2, "a malformed --node (%s) is refused" % why, bad, n[1], n[2], stderr_has="--node")
    r = ctl("cluster", "init", "--chain", CHAIN, "--admin-out", os.path.join(base, "n2", "a.key"), n[0], n[1], n[2])
    exits(r, 1, "--admin-out inside a DIR yet to be made is refused", stderr_has="inside the data directory")
    T.eq(sorted(os.listdir(base)), [], "  ... and nothing was made")
    os.mkdir(os.path.join(base, "n3"))
    r = ctl("cluster", "init", "--chain", CHAIN, "--admin-out", key_path, n[0], n[1], n[2])
    exits(r, 1, "an existing DIR is refused", stderr_has="already exists")
    T.eq(sorted(os.listdir(base)), ["n3"], "  ... no other DIR and no admin key file left")
    os.rmdir(os.path.join(base, "n3"))
    r = ctl("cluster", "init", "--chain", CHAIN, "--admin-out", key_path, "--admin", tc.Key().pk, n[0], n[1], n[2])
    exits(r, 2, "--admin with --admin-out is a usage error")
    r = ctl("cluster", "init", "--chain", "Bad Chain", "--admin", tc.Key().pk, n[0], n[1], n[2])
    exits(r, 2, "a bad chain id is a usage error", stderr_has="--chain")
    r = ctl("cluster", "init", "--chain", CHAIN, "--admin", "01" + "00" * 31, n[0], n[1], n[2])
    exits(r, 2, "an admin key that is not a valid point is a usage error", stderr_has="--admin")
    r = ctl("cluster", "init", "--admin", tc.Key().pk, n[0], n[1], n[2])
    exits(r, 2, "cluster init without --chain is a usage error")
    T.eq(sorted(os.listdir(base)), [], "no refusal made anything")


# ---------------------------------------------------------------- cluster status

class FakeRpc:
    """A loopback JSON-RPC stand-in: answers every request line with `result`."""

    def __init__(self, result):
        self.result = result
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            serve_lines(c, lambda req: {"jsonrpc": "2.0", "id": req.get("id"), "result": self.result})
        self.ls.close()

    def close(self):
        self.stop.set()
        self.th.join(5)


def serve_lines(c, answer):
    """Answers each request line of connection c with answer(request) until it closes."""
    c.settimeout(5)
    buf = b""
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                c.sendall((json.dumps(answer(json.loads(line))) + "\n").encode())
    except (OSError, ValueError):
        pass
    c.close()


CLUSTER = {"id": 2, "role": "follower", "term": 7, "leader": 1, "commit": 42, "applied": 41,
           "nodes": [{"id": 1, "raft": "10.0.0.1:7801", "rpc": "10.0.0.1:7707", "role": "leader", "lag": 0},
                     {"id": 2, "raft": "10.0.0.2:7801", "rpc": "10.0.0.2:7707", "role": "follower", "lag": 1},
                     {"id": 3, "raft": "10.0.0.3:7801", "rpc": "10.0.0.3:7707", "role": "candidate", "lag": 5}]}


def status_cases(tmp):
    fake = FakeRpc({"version": "x", "chain": CHAIN, "cluster": CLUSTER})
    try:
        rc, out, err = r = ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % fake.port, "--json")
        exits(r, 0, "cluster status --json succeeds")
        T.eq(json.loads(out) if rc == 0 else None, CLUSTER, "--json prints the cluster object raw")
        rc, out, err = r = ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % fake.port)
        exits(r, 0, "cluster status succeeds")
        T.check(re.search(r"^role\s+follower$", out, re.M) and re.search(r"^leader\s+1$", out, re.M)
                and re.search(r"^term\s+7$", out, re.M) and re.search(r"^applied\s+41$", out, re.M),
                "the node's own fields, one a line", out)
        T.check(re.search(r"^\s+id\s+raft\s+rpc\s+role\s+lag$", out, re.M)
                and re.search(r"^\s+3\s+10\.0\.0\.3:7801\s+10\.0\.0\.3:7707\s+candidate\s+5$", out, re.M),
                "the nodes as a table with a header row", out)
    finally:
        fake.close()
    nobody = dict(CLUSTER, leader=None)
    fake = FakeRpc({"cluster": nobody})
    try:
        rc, out, err = r = ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % fake.port)
        T.check(rc == 0 and re.search(r"^leader\s+-$", out, re.M), "no known leader shows as -", out)
    finally:
        fake.close()
    fake = FakeRpc({"cluster": "broken"})
    try:
        exits(ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % fake.port), 3,
              "a cluster member that is not an object is a daemon error", stderr_has="malformed")
    finally:
        fake.close()
    with tc.Node(chain=CHAIN) as node:
        node.init().start()
        exits(ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % node.port), 1,
              "a single node: cluster status exits 1", stderr_has="not in a cluster")
    exits(ctl("cluster", "status", "--rpc", "127.0.0.1:%d" % tc.free_port()), 3, "nobody listening: exit 3")


# ---------------------------------------------------------------- control socket

class FakeControl:
    """A stand-in for DIR/control.sock: records each request, answers with answer(request)."""

    def __init__(self, d, answer):
        self.path = os.path.join(d, "control.sock")
        self.answer, self.requests = answer, []
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(self.path)
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            serve_lines(c, self.record)
        self.ls.close()

    def record(self, req):
        self.requests.append((req.get("method"), req.get("params")))
        return dict(self.answer(req), jsonrpc="2.0", id=req.get("id"))

    def close(self):
        self.stop.set()
        self.th.join(5)
        os.unlink(self.path)


def control_cases(tmp):
    d = tempfile.mkdtemp(prefix="tr-cc-")  # short: a Unix socket path holds ~107 bytes
    answers = {"cluster.transfer": {"result": {"leader": 2}}, "cluster.add": {"result": {}},
               "cluster.remove": {"result": {"id": 4, "nodes": 3}}}
    fake = FakeControl(d, lambda req: answers.get(req.get("method"), {"error": {"code": -32601, "message": "no"}}))
    try:
        r = ctl("cluster", "transfer", "--datadir", d, "--to", "2")
        T.check(r[0] == 0 and re.search(r"^leader\s+2$", r[1], re.M), "transfer --to prints the result's fields", r)
        r = ctl("cluster", "transfer", "--datadir", d, "--json")
        T.check(r[0] == 0 and json.loads(r[1]) == {"leader": 2}, "transfer --json prints the result raw", r)
        r = ctl("cluster", "add", "--datadir", d, "--node", "4=10.0.0.4:7801,10.0.0.4:7707")
        T.check(r[0] == 0 and r[1].strip() == "node 4 added", "add prints `node 4 added` for an empty result", r)
        r = ctl("cluster", "remove", "--datadir", d, "--id", "4")
        T.check(r[0] == 0 and re.search(r"^nodes\s+3$", r[1], re.M), "remove prints the result's fields", r)
        T.eq(fake.requests, [("cluster.transfer", {"id": 2}), ("cluster.transfer", {}),
                             ("cluster.add", {"id": 4, "raft": "10.0.0.4:7801", "rpc": "10.0.0.4:7707"}),
                             ("cluster.remove", {"id": 4})],
             "the methods and params sent over the control socket")
        del fake.requests[:]
        for args, why in ((["remove", "--datadir", d], "remove without --id"),
                          (["remove", "--datadir", d, "--id", "0"], "remove --id 0"),
                          (["remove", "--datadir", d, "--id", "x"], "remove --id x"),
                          (["transfer", "--datadir", d, "--to", "-1"], "transfer --to -1"),
                          (["transfer", "--to", "2"], "transfer without --datadir"),
                          (["add", "--datadir", d], "add without --node"),
                          (["add", "--datadir", d, "--node", "4=10.0.0.4:7801"], "add without an rpc address"),
                          (["add", "--datadir", d, "--node", "4=10.0.0.4:7801,10.0.0.4:7707,/x"], "add with a DIR")):
            exits(ctl("cluster", *args), 2, "usage error: %s" % why)
        T.eq(fake.requests, [], "usage errors send nothing")
    finally:
        fake.close()
    errs = {"cluster.remove": {"error": {"code": -32004, "message": "not found",
                                         "data": {"reason": "not_found", "detail": "no node 9"}}},
            "cluster.transfer": {"error": {"code": -32603, "message": "internal error",
                                           "data": {"detail": "not the leader"}}}}
    fake = FakeControl(d, lambda req: errs[req["method"]])
    try:
        exits(ctl("cluster", "remove", "--datadir", d, "--id", "9"), 1, "an unknown node id (-32004) exits 1",
              stderr_has="no node 9")
        exits(ctl("cluster", "transfer", "--datadir", d), 3, "a daemon error exits 3", stderr_has="not the leader")
    finally:
        fake.close()
    exits(ctl("cluster", "remove", "--datadir", d, "--id", "4"), 3, "no control socket: exit 3",
          stderr_has="is tranched running")
    shutil.rmtree(d, ignore_errors=True)


def join_cases(tmp):
    """cluster join from the cluster init_cases made in tmp (n1..n3)."""
    base = os.path.join(tmp, "n1")
    new = os.path.join(tmp, "n4")
    r = ctl("cluster", "join", "--from", base, node_opt(4, tmp))
    if not exits(r, 0, "cluster join makes a fourth node's directory", stdout_has="cluster add"):
        return
    T.eq(sorted(os.listdir(new)), ["node.key", "tranche.conf", "tranche.db"],
         "the joining node's DIR holds node.key, tranche.conf and tranche.db")
    with open(os.path.join(new, "tranche.conf")) as f:
        conf = f.read()
    T.check("cluster_id = 4" in conf and "cluster_join = true" in conf and sum(line.startswith("cluster_node = ") for line in conf.splitlines()) == 4,
            "its config names it, all four nodes and cluster_join = true", conf[-800:])
    T.eq(entries(new)[0], entries(base)[0], "its genesis entry is the cluster's, byte for byte")
    with open(os.path.join(new, "node.key")) as f, open(os.path.join(base, "node.key")) as g:
        T.check(f.read() == g.read(), "it holds the cluster's node key")
    exits(ctl("cluster", "join", "--from", base, node_opt(4, tmp)), 1,
          "joining into an existing DIR is refused", stderr_has="already exists")
    exits(ctl("cluster", "join", "--from", base, node_opt(2, tmp, name="n2b")), 1,
          "an id the cluster uses is refused")
    exits(ctl("cluster", "join", "--from", base, node_opt(5, tmp, raft="127.0.0.1:17801")), 1,
          "an address the cluster uses is refused")
    single = os.path.join(tmp, "single")
    if ctl("init", "--datadir", single, "--chain", CHAIN, "--admin", tc.Key().pk)[0] == 0:
        exits(ctl("cluster", "join", "--from", single, node_opt(6, tmp)), 1,
              "joining the 'cluster' of a single node is refused", stderr_has="not a cluster node")
    exits(ctl("cluster", "join", "--from", base), 2, "cluster join without --node is a usage error")


def help_cases(tmp):
    for c in ("init", "join", "status", "transfer", "add", "remove"):
        rc, out, err = ctl("cluster", c, "--help")
        T.check(rc == 0 and "usage: tranchectl cluster " + c in out and "example:" in out,
                "cluster %s --help shows usage and an example" % c)
    exits(ctl("cluster"), 2, "cluster alone lists its subcommands", stderr_has="tranchectl cluster init")
    rc, script, err = ctl("completion", "bash")
    T.check(rc == 0 and re.search(r"cluster\) if .*init join status transfer add remove", script)
            and '"cluster init") opts="--chain --admin --admin-out --node --json"' in script,
            "completion bash knows the cluster subcommands and their options", script[-3000:])


def main():
    tmp = tempfile.mkdtemp(prefix="tranche-cluster-cli-")
    try:
        T.section("cluster init", init_cases, tmp)
        T.section("cluster init refusals", refusal_cases, tmp)
        T.section("cluster join", join_cases, tmp)
        T.section("cluster status", status_cases, tmp)
        T.section("cluster control", control_cases, tmp)
        T.section("help", help_cases, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    T.done()


main()
