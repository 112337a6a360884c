"""trclient.py - the integration tests' helpers, a thin layer over the client
library `tranche` (tools/python; meson sets PYTHONPATH), so that every test run
exercises the library: keys, signatures, txids, entry hashes, Merkle proofs,
checkpoints and the JSON-RPC connection all come from it.  What stays here is
what only tests need: raw and malformed sends, building invalid txs, proof
*builders* to compare the node's proofs with, the node fixture and TAP.
Run with /usr/bin/python3 (Debian's, with python3-nacl).
Everything here follows /work/shared/PROTOCOL.md (the contract), never the C code.

  Key            Ed25519 key from a 32-byte seed; seed files are 64 hex chars + "\\n".
  tx_bytes()     a tx dict as compact JSON bytes (any valid JSON is allowed: the tx
                 travels as a string and the exact bytes are signed).
  sign_tx()      Ed25519 over b"TRANCHE/TX/1\\n" + tx bytes, as 128 hex chars.
  Rpc            JSON-RPC 2.0 over TCP, one JSON text per line; pipelining and
                 raw byte sends for malformed-input tests.
  Node           fixture: tranchectl init + tranched on a free loopback port.
  Tap            check(cond, msg) / done() producing TAP for meson.
  entry_hash(), merkle_root(), verify_checkpoint(): independent recomputation
                 of section 3.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import tranche
from tranche import verify as _verify

CHAIN = "test.example/it"
TX_DOMAIN = tranche.TX_DOMAIN
ENTRY_DOMAIN = _verify.ENTRY_DOMAIN
LINE_MAX = 1024 * 1024
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


# --------------------------------------------------------------------------- TAP

class Tap:
    """TAP producer: check() prints one test point, done() prints the plan and exits."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def comment(self, text):
        for line in str(text).splitlines() or [""]:
            print("# " + line)
        sys.stdout.flush()

    def check(self, cond, msg, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, msg))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, msg))
            if detail is not None:
                self.comment(detail if isinstance(detail, str) else repr(detail)[:4000])
            # meson --print-errorlogs shows a TAP test's stderr only: say there what failed
            # (and the head of why), so a CI log names the failure without testlog.txt.
            sys.stderr.write("not ok %d - %s\n" % (self.n, msg))
            if detail is not None:
                sys.stderr.write((detail if isinstance(detail, str) else repr(detail))[:6000] + "\n")
        sys.stdout.flush()
        return bool(cond)

    def eq(self, got, want, msg):
        return self.check(got == want, msg, "got  %r\nwant %r" % (got, want))

    def section(self, name, fn, *args):
        """Run fn(*args); an exception becomes one failing test point (and the rest goes on)."""
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a test harness reports everything
            self.check(False, "%s: no exception" % name, traceback.format_exc())

    def skip_all(self, why):
        print("1..0 # SKIP %s" % why)
        sys.exit(0)

    def done(self):
        print("1..%d" % self.n)
        if self.failed:
            sys.stderr.write("%d of %d checks failed\n" % (self.failed, self.n))
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)


# --------------------------------------------------------------------------- keys

class Key(tranche.Key):
    """tranche.Key with the names the tests use: Key() is a fresh key, `pk` the
    public key hex, `pk_bytes` its bytes; load() is the library's (0600 only)."""

    def __init__(self, seed=None):
        super().__init__(seed if seed is not None else os.urandom(32))
        self.pk_bytes = self.public_bytes
        self.pk = self.public


def verify_sig(pk_hex, sig_bytes, msg):
    return tranche.verify_signature(pk_hex, sig_bytes, msg)


# --------------------------------------------------------------------------- txs

def tx_bytes(tx):
    """Compact JSON bytes of a tx dict (str/bytes are passed through unchanged)."""
    if isinstance(tx, bytes):
        return tx
    if isinstance(tx, str):
        return tx.encode("utf-8")
    return json.dumps(tx, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_tx(tx, key):
    return tranche.sign(tx_bytes(tx), key)


def txid_of(tx):
    return tranche.txid(tx_bytes(tx))


_id_counter = [0]


def new_id(prefix="t"):
    _id_counter[0] += 1
    return "%s-%d-%d" % (prefix, os.getpid(), _id_counter[0])


def make_tx(type_, key, chain=CHAIN, id=None, **fields):
    """A tx dict with the common fields first; `key` may be a Key or a public-key hex."""
    signer = key.pk if isinstance(key, Key) else key
    tx = {"type": type_, "chain": chain, "signer": signer, "id": id or new_id(type_.replace(".", "_"))}
    tx.update(fields)
    return tx


# --------------------------------------------------------------------------- journal math (section 3)

entry_bytes = _verify.entry_bytes
entry_hash = _verify.entry_hash
merkle_root = _verify.merkle_root
verify_inclusion = _verify.verify_inclusion
verify_consistency = _verify.verify_consistency


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_path(m, leaves):
    """RFC 9162 2.1.3.1 PATH(m, D[n]) for leaf index m (0-based)."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return inclusion_path(m, leaves[:k]) + [merkle_root(leaves[k:])]
    return inclusion_path(m - k, leaves[k:]) + [merkle_root(leaves[:k])]


def consistency_path(m, leaves, b=True):
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) (SUBPROOF with b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [merkle_root(leaves)]
    k = _k(n)
    if m <= k:
        return consistency_path(m, leaves[:k], b) + [merkle_root(leaves[k:])]
    return consistency_path(m - k, leaves[k:], False) + [merkle_root(leaves[:k])]


def vkey_of(chain, pk_bytes):
    vk = tranche.Vkey(chain, pk_bytes)
    return str(vk), vk.key_id


def parse_checkpoint(text, chain, node_pk_bytes):
    """Check a C2SP checkpoint signed by the node key. Returns (size, root bytes) or raises ValueError."""
    try:
        cp = tranche.open_checkpoint(text, tranche.Vkey(chain, node_pk_bytes))
    except tranche.VerifyError as e:
        raise ValueError(str(e)) from None
    return cp.size, cp.root


# --------------------------------------------------------------------------- JSON helpers

class FloatSeen(ValueError):
    pass


def _no_float(s):
    raise FloatSeen("non-integer number %r" % s)


def _no_const(s):
    raise FloatSeen("constant %r" % s)


def loads_strict(line):
    """json.loads that refuses floats/exponents/NaN, so integers must be plain digits."""
    if isinstance(line, bytes):
        line = line.decode("utf-8")
    return json.loads(line, parse_float=_no_float, parse_constant=_no_const)


# --------------------------------------------------------------------------- JSON-RPC client

class RpcError(Exception):
    pass


class Rpc(tranche.Connection):
    """JSON-RPC 2.0 over TCP with newline framing: the library's Connection,
    plus what the tests need (raw sends, EOF and silence checks, error objects
    as values)."""

    def __init__(self, host, port, timeout=30.0):
        super().__init__(host, port, timeout)
        self.last_raw = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # raw layer
    def send_obj(self, obj):
        self.send_raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv_line(self, timeout=None):
        """One response line (bytes, without the newline). None on EOF/reset; socket.timeout on timeout."""
        line = super().recv_line(timeout)
        if line is not None:
            self.last_raw = line
        return line

    def recv(self, timeout=None):
        line = self.recv_line(timeout)
        if line is None:
            raise RpcError("connection closed")
        return loads_strict(line)

    def at_eof(self, timeout=5.0):
        """True when the peer closed (EOF or reset) with no further bytes."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def silent(self, timeout=0.5):
        """True when nothing arrives within timeout."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return True
        self.buf += data
        return False

    # request layer (request() is the library's)
    def call_raw(self, method, params=None):
        """The whole response object of one call."""
        req = self.request(method, params)
        self.send_obj(req)
        resp = self.recv()
        if not isinstance(resp, dict) or resp.get("id") != req["id"]:
            raise RpcError("response does not match request %r: %r" % (req, resp))
        return resp

    def call(self, method, params=None):
        """The result; raises RpcError carrying the error object on an error response."""
        resp = self.call_raw(method, params)
        if "error" in resp:
            err = RpcError("%s -> %r" % (method, resp["error"]))
            err.error = resp["error"]
            raise err
        return resp["result"]

    def result_or_error(self, method, params=None):
        resp = self.call_raw(method, params)
        return resp["error"] if "error" in resp else resp["result"]


def is_error(r):
    return isinstance(r, dict) and "code" in r and "message" in r and "seq" not in r


def reason_of(r):
    """The refusal reason of an error object (None when r is not a -32001 refusal)."""
    if is_error(r) and r.get("code") == -32001 and isinstance(r.get("data"), dict):
        return r["data"].get("reason")
    return None


# --------------------------------------------------------------------------- node fixture

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def binaries_or_skip(tap):
    d, c = os.environ.get("TRANCHED"), os.environ.get("TRANCHECTL")
    if not d or not c:
        tap.skip_all("TRANCHED and TRANCHECTL must name the built binaries")
    for p in (d, c):
        if not os.access(p, os.X_OK):
            print("Bail out! %s is not an executable" % p)
            sys.exit(1)
    return d, c


class Node:
    """A tranche node in a temp dir: init, start, stop, restart, cleanup."""

    def __init__(self, chain=CHAIN, workers=2):
        self.tranched = os.environ["TRANCHED"]
        self.tranchectl = os.environ["TRANCHECTL"]
        self.chain = chain
        self.workers = workers
        self.tmp = tempfile.mkdtemp(prefix="tranche-it-")
        self.datadir = os.path.join(self.tmp, "data")
        self.admin_key_path = os.path.join(self.tmp, "admin.key")
        self.proc = None
        self.port = None
        self.admin = None
        self.init_stdout = ""
        self.printed_admin_pk = None
        self.starts = 0
        self._conn = None
        self.env = {}  # added to tranched's environment at each start

    # -- lifecycle
    def init(self):
        r = subprocess.run([self.tranchectl, "init", "--datadir", self.datadir, "--chain", self.chain,
                            "--admin-out", self.admin_key_path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.init_stdout = r.stdout.decode("utf-8", "replace")
        if r.returncode != 0:
            raise RuntimeError("tranchectl init exited %d:\n%s%s" % (
                r.returncode, self.init_stdout, r.stderr.decode("utf-8", "replace")))
        self.admin = Key.load(self.admin_key_path)
        toks = HEX64.findall(self.init_stdout)
        self.printed_admin_pk = self.admin.pk if self.admin.pk in toks else (toks[-1] if toks else None)
        return self

    def start(self, timeout=20.0):
        self.port = free_port()
        self.starts += 1
        self.out_path = os.path.join(self.tmp, "tranched.%d.out" % self.starts)
        self.err_path = os.path.join(self.tmp, "tranched.%d.err" % self.starts)
        out, err = open(self.out_path, "wb"), open(self.err_path, "wb")
        self.proc = subprocess.Popen([self.tranched, "--datadir", self.datadir,
                                      "--listen", "127.0.0.1:%d" % self.port,
                                      "--workers", str(self.workers)],
                                     stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, **self.env) if self.env else None)
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("tranched exited %d at start:\n%s" % (self.proc.returncode, self.logs()))
            try:
                with Rpc("127.0.0.1", self.port, timeout=2.0) as c:
                    c.call("node.status", {})
                return self
            except (OSError, RpcError, ValueError):
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("tranched did not answer node.status within %.0fs:\n%s"
                                       % (timeout, self.logs()))
                time.sleep(0.05)

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code, or None when it had to be killed."""
        if self._conn:
            self._conn.close()
            self._conn = None
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.proc = None
        return rc

    def kill(self):
        if self._conn:  # the daemon's end is gone with it
            self._conn.close()
            self._conn = None
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        if self._conn:
            self._conn.close()
            self._conn = None
        self.kill()
        if os.environ.get("TRANCHE_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self, lines=40):
        out = []
        for p in (getattr(self, "out_path", None), getattr(self, "err_path", None)):
            if p and os.path.exists(p):
                with open(p, "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
                out.append("--- %s\n%s" % (os.path.basename(p), "\n".join(tail)))
        return "\n".join(out)

    def ctl(self, *args, timeout=120):
        return subprocess.run([self.tranchectl] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.cleanup()

    # -- RPC
    def connect(self, timeout=30.0):
        return Rpc("127.0.0.1", self.port, timeout=timeout)

    @property
    def conn(self):
        if self._conn is None:
            self._conn = self.connect()
        return self._conn

    def call(self, method, params=None):
        return self.conn.call(method, params if params is not None else {})

    def roe(self, method, params=None):
        """Result or error object."""
        return self.conn.result_or_error(method, params if params is not None else {})

    def head(self):
        return self.call("ledger.head")

    def submit(self, tx, key, sig=None):
        """tx.submit; returns the receipt or the error object."""
        b = tx_bytes(tx)
        return self.roe("tx.submit", {"tx": b.decode("utf-8"),
                                      "sig": sig if sig is not None else sign_tx(b, key)})

    def check_tx(self, tx, key=None, sig=None):
        b = tx_bytes(tx)
        p = {"tx": b.decode("utf-8")}
        if sig is not None:
            p["sig"] = sig
        elif key is not None:
            p["sig"] = sign_tx(b, key)
        return self.roe("tx.check", p)

    def tx(self, type_, key, **fields):
        return make_tx(type_, key, chain=self.chain, **fields)

    def all_entries(self, page=100):
        out, frm = [], 1
        while frm is not None:
            r = self.call("ledger.entries", {"from": frm, "limit": page})
            out.extend(r["entries"])
            frm = r["next"]
            if len(out) > 1000000:
                raise RuntimeError("ledger.entries does not terminate")
        return out


def check_chain(entries, tap=None):
    """Recompute every hash and link of section 3. Returns (ok, message, leaves)."""
    prev = b"\x00" * 32
    leaves = []
    last_time = 0
    for i, e in enumerate(entries, start=1):
        if e.get("seq") != i:
            return False, "entry %d has seq %r" % (i, e.get("seq")), leaves
        tx = e["tx"].encode("utf-8")
        txid = hashlib.sha256(tx).digest()
        sig = bytes.fromhex(e["sig"])
        if e.get("txid") != txid.hex():
            return False, "seq %d: txid %r != sha256(tx) %s" % (i, e.get("txid"), txid.hex()), leaves
        if e.get("prev") != prev.hex():
            return False, "seq %d: prev %r != %s" % (i, e.get("prev"), prev.hex()), leaves
        if not isinstance(e.get("time"), int) or e["time"] < last_time:
            return False, "seq %d: time %r not >= %r" % (i, e.get("time"), last_time), leaves
        h = entry_hash(i, e["time"], prev, txid, sig)
        if e.get("hash") != h.hex():
            return False, "seq %d: hash %r != recomputed %s" % (i, e.get("hash"), h.hex()), leaves
        signer = json.loads(tx)["signer"]
        if not verify_sig(signer, sig, TX_DOMAIN + tx):
            return False, "seq %d: signature does not verify under signer" % i, leaves
        leaves.append(h)
        prev = h
        last_time = e["time"]
    return True, "%d entries" % len(entries), leaves
