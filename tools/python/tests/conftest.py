"""Fixtures of the library's own tests: the known-answer vectors the C unit
tests use (tests/unit/kat_vectors.h, read here, so both check the same
bytes), the built binaries, and a real tranched on a free loopback port."""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..")))

import tranche  # noqa: E402

KAT_HEADER = os.path.join(ROOT, "tests", "unit", "kat_vectors.h")
CHAIN = "test.example/py"


def _c_literal(body):
    """The bytes of a C string literal body (the escapes make_kat.py emits)."""
    out, i = bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(0), 8))
            i += 1 + len(m.group(0))
        else:
            out += {"n": b"\n", "\\": b"\\", '"': b'"'}[nxt]
            i += 2
    return bytes(out)


def read_kat(path=KAT_HEADER):
    """{NAME without KAT_: str or int} from the C header."""
    with open(path, encoding="ascii") as f:
        text = f.read().replace("\\\n", " ")
    kat = {}
    for m in re.finditer(r"^#define KAT_(\w+)[ \t]+(.+)$", text, re.M):
        name, value = m.group(1), m.group(2).strip()
        lits = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
        if lits:
            kat[name] = b"".join(_c_literal(s) for s in lits).decode("utf-8")
        else:
            kat[name] = int(re.match(r"\d+", value).group(0))
    return kat


@pytest.fixture(scope="session")
def kat():
    k = read_kat()
    assert len(k) >= 25, "kat_vectors.h yielded only %d vectors" % len(k)
    return k


def _binary(name):
    path = os.environ.get(name)
    if not path or not os.access(path, os.X_OK):
        pytest.fail("%s must name the built binary (meson test sets it)" % name)
    return path


@pytest.fixture(scope="session")
def tranchectl():
    return _binary("TRANCHECTL")


@pytest.fixture(scope="session")
def tranched():
    return _binary("TRANCHED")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """tranchectl init + tranched in a temp dir, with a Client and the admin key."""

    def __init__(self, tranched, tranchectl):
        self.tranchectl = tranchectl
        self.tmp = tempfile.mkdtemp(prefix="tranche-py-")
        self.datadir = os.path.join(self.tmp, "node")
        self.admin_key_path = os.path.join(self.tmp, "admin.key")
        subprocess.run([tranchectl, "init", "--datadir", self.datadir, "--chain", CHAIN,
                        "--admin-out", self.admin_key_path], check=True, capture_output=True, timeout=60)
        self.admin = tranche.Key.load(self.admin_key_path)
        self.port = free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.tmp, "tranched.log"), "wb")
        self.proc = subprocess.Popen([tranched, "--datadir", self.datadir, "--listen", self.address,
                                      "--workers", "2"], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with tranche.Client("127.0.0.1", self.port, timeout=2) as c:
                    self.status = c.status()
                break
            except tranche.TrancheError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("tranched did not start")
                time.sleep(0.05)
        self.vkey = self.status["vkey"]
        self.client = tranche.Client("127.0.0.1", self.port, timeout=30)
        self.admin_signer = tranche.Signer(self.admin, CHAIN)

    def ctl(self, *args, check=True):
        r = subprocess.run([self.tranchectl] + list(args), capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("tranchectl %s exited %d: %s%s" % (args, r.returncode, r.stdout, r.stderr))
        return r

    def stop(self):
        if getattr(self, "client", None):
            self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def node(tranched, tranchectl):
    n = Node(tranched, tranchectl)
    yield n
    n.stop()
