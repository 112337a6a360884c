"""trclient.py - a small client library for tranche's black-box integration tests.

Standard library plus `cryptography` (Ed25519) only; run with /usr/bin/python3.
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
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

CHAIN = "test.example/it"
TX_DOMAIN = b"TRANCHE/TX/1\n"
ENTRY_DOMAIN = b"TRANCHE/ENTRY/1\n"
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

class Key:
    """An Ed25519 key pair from a 32-byte seed."""

    def __init__(self, seed=None):
        self.seed = seed if seed is not None else os.urandom(32)
        assert len(self.seed) == 32
        self._sk = Ed25519PrivateKey.from_private_bytes(self.seed)
        self.pk_bytes = self._sk.public_key().public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw)
        self.pk = self.pk_bytes.hex()

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            data = f.read()
        if not re.fullmatch(rb"[0-9a-f]{64}\n", data):
            raise ValueError("%s: not 64 lowercase hex chars and a newline: %r" % (path, data[:80]))
        return cls(bytes.fromhex(data[:64].decode()))

    def save(self, path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.seed.hex() + "\n")

    def sign(self, msg):
        return self._sk.sign(msg)

    def __repr__(self):
        return "Key(%s...)" % self.pk[:12]


def verify_sig(pk_hex, sig_bytes, msg):
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(pk_hex)).verify(sig_bytes, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------------------- txs

def tx_bytes(tx):
    """Compact JSON bytes of a tx dict (str/bytes are passed through unchanged)."""
    if isinstance(tx, bytes):
        return tx
    if isinstance(tx, str):
        return tx.encode("utf-8")
    return json.dumps(tx, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_tx(tx, key):
    return key.sign(TX_DOMAIN + tx_bytes(tx)).hex()


def txid_of(tx):
    return hashlib.sha256(tx_bytes(tx)).hexdigest()


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

def entry_bytes(seq, time_ms, prev, txid, sig):
    return ENTRY_DOMAIN + struct.pack(">QQ", seq, time_ms) + prev + txid + sig


def entry_hash(seq, time_ms, prev, txid, sig):
    return hashlib.sha256(b"\x00" + entry_bytes(seq, time_ms, prev, txid, sig)).digest()


def merkle_root(leaves):
    """RFC 9162 MTH over already-hashed leaves (entry hashes)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


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


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_hash, second_hash, path):
    """RFC 9162 2.1.4.2."""
    if first == second:
        return path == [] and first_hash == second_hash
    if first == 0 or first > second or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path = [first_hash] + path
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def vkey_of(chain, pk_bytes):
    key_id = hashlib.sha256(chain.encode() + b"\x0a\x01" + pk_bytes).digest()[:4]
    return "%s+%s+%s" % (chain, key_id.hex(), base64.b64encode(b"\x01" + pk_bytes).decode()), key_id


def parse_checkpoint(text, chain, node_pk_bytes):
    """Check a C2SP checkpoint signed by the node key. Returns (size, root bytes) or raises."""
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise ValueError("no blank line in checkpoint")
    lines = body.split("\n")
    if len(lines) != 3:
        raise ValueError("checkpoint body must have 3 lines: %r" % body)
    if lines[0] != chain:
        raise ValueError("origin %r != %r" % (lines[0], chain))
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise ValueError("bad size line %r" % lines[1])
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise ValueError("root is not 32 bytes")
    signed = (body + "\n").encode()
    _, key_id = vkey_of(chain, node_pk_bytes)
    if not sigs.endswith("\n"):
        raise ValueError("signature block does not end in newline")
    ok = False
    for line in sigs[:-1].split("\n"):
        m = re.fullmatch("\u2014 (\\S+) (\\S+)", line)
        if not m:
            raise ValueError("bad signature line %r" % line)
        if m.group(1) != chain:
            continue
        blob = base64.b64decode(m.group(2), validate=True)
        if blob[:4] != key_id:
            continue
        if len(blob) != 68 or not verify_sig(node_pk_bytes.hex(), blob[4:], signed):
            raise ValueError("node signature does not verify")
        ok = True
    if not ok:
        raise ValueError("no signature by the node key")
    return int(lines[1]), root


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


class Rpc:
    """JSON-RPC 2.0 over TCP with newline framing."""

    def __init__(self, host, port, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.next_id = 1
        self.last_raw = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # raw layer
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_obj(self, obj):
        self.send_raw(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def recv_line(self, timeout=None):
        """One response line (bytes, without the newline). None on EOF/reset; socket.timeout on timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no response line")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return None
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line  # unterminated last line: still report it
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
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

    # request layer
    def request(self, method, params=None, id=None):
        if id is None:
            id = self.next_id
            self.next_id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            req["params"] = params
        return req

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
                                     stdout=out, stderr=err, stdin=subprocess.DEVNULL)
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
