"""The client against a real tranched: submit and its receipts, refusals as
exceptions, resubmission after an unknown outcome, page iterators, and
receipts verified offline (interchangeably with tranchectl)."""
import json
import os
import socket
import threading
import time

import pytest

import tranche
from conftest import CHAIN


class Proxy:
    """A loopback relay in front of the node whose first request goes wrong
    in a chosen way; every later one is relayed line by line."""

    def __init__(self, port, mode):
        self.target, self.mode, self.requests = ("127.0.0.1", port), mode, 0
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        up = socket.create_connection(self.target)
        cf, uf = c.makefile("rb"), up.makefile("rb")
        for line in cf:
            self.requests += 1
            first = self.requests == 1
            if first and self.mode == "overloaded":
                req = json.loads(line)
                c.sendall(json.dumps({"jsonrpc": "2.0", "id": req["id"],
                                      "error": {"code": -32002, "message": "overloaded"}}).encode() + b"\n")
                continue
            up.sendall(line)
            answer = uf.readline()
            if first and self.mode == "drop":   # applied, but the answer is lost with the connection
                c.close()
                return
            if first and self.mode == "stall":  # applied, but the answer never comes
                self.held.append(c)
                return
            c.sendall(answer)
        c.close()

    def close(self):
        self.lsock.close()
        for c in self.held:
            c.close()


@pytest.fixture(scope="module")
def world(node):
    """An issuer, two investors and an asset with units issued."""
    c, admin = node.client, node.admin_signer
    keys = {n: tranche.Key.generate() for n in ("issuer", "inv1", "inv2", "inv3")}
    c.submit(admin.account_open(account=keys["issuer"].public, roles=["issuer"], jurisdiction="US", kyc=True))
    for n in ("inv1", "inv2", "inv3"):
        c.submit(admin.account_open(account=keys[n].public, roles=["investor"], jurisdiction="GB", kyc=True))
    issuer = tranche.Signer(keys["issuer"], CHAIN)
    c.submit(issuer.asset_create(asset="PY-1", name="Python note", kind="bond", currency="USD",
                                 principal=1000000, units=1000, coupon_bps=500, maturity="2030-12-31",
                                 rating="A", risk_weight_pct=100))
    for n, units in (("inv1", 300), ("inv2", 200), ("inv3", 100)):
        c.submit(issuer.asset_issue(asset="PY-1", to=keys[n].public, units=units))
    return keys, issuer


def test_submit_returns_the_durable_receipt(node, world):
    keys, issuer = world
    signed = tranche.Signer(keys["inv1"], CHAIN).transfer(asset="PY-1", to=keys["inv2"].public, units=10)
    r = node.client.submit(signed)
    assert r["txid"] == signed.txid and r["duplicate"] is False and r["seq"] >= 2
    assert {(h["account"], h["units"]) for h in r["effects"]["holdings"]} == \
        {(keys["inv1"].public, 290), (keys["inv2"].public, 210)}
    again = node.client.submit(signed)  # the same bytes: the stored receipt
    assert again["duplicate"] is True and again["seq"] == r["seq"] and again["hash"] == r["hash"]
    assert node.client.tx(signed.txid)["tx"] == signed.tx


@pytest.mark.parametrize("make, reason", [
    (lambda k, s: tranche.Signer(k["inv1"], CHAIN).transfer(asset="PY-1", to=k["inv2"].public, units=10 ** 6),
     "insufficient_units"),
    (lambda k, s: s.asset_issue(asset="PY-1", to=k["inv1"].public, units=10 ** 6), "exceeds_authorised"),
    (lambda k, s: tranche.Signer(k["inv1"], "other.example/chain").transfer(asset="PY-1", to=k["inv2"].public,
                                                                           units=1), "wrong_chain"),
    (lambda k, s: tranche.Signer(k["inv1"], CHAIN).transfer(asset="NOPE", to=k["inv2"].public, units=1),
     "not_found"),
    (lambda k, s: tranche.SignedTx(s.transfer(asset="PY-1", to=k["inv1"].public, units=1).tx_bytes, "00" * 64),
     "bad_signature"),
    (lambda k, s: tranche.SignedTx.sign(b'{"type":"transfer"}', k["inv1"]), "invalid"),
])
def test_refusals_raise_with_reason(node, world, make, reason):
    keys, issuer = world
    with pytest.raises(tranche.Refused) as e:
        node.client.submit(make(keys, issuer))
    assert e.value.reason == reason and e.value.code == -32001 and e.value.detail
    assert str(e.value).startswith("refused: " + reason)


def test_id_conflict(node, world):
    keys, _ = world
    s = tranche.Signer(keys["inv2"], CHAIN)
    node.client.submit(s.transfer(asset="PY-1", to=keys["inv3"].public, units=1, id="once"))
    with pytest.raises(tranche.Refused) as e:
        node.client.submit(s.transfer(asset="PY-1", to=keys["inv3"].public, units=2, id="once"))
    assert e.value.reason == "id_conflict"


@pytest.mark.parametrize("mode", ["drop", "stall", "overloaded"])
def test_resubmits_the_same_bytes_after_an_unknown_outcome(node, world, mode):
    keys, _ = world
    before = node.client.account(keys["inv3"].public)["holdings"][0]["units"]
    proxy = Proxy(node.port, mode)
    try:
        c = tranche.Client("127.0.0.1", proxy.port, timeout=1.5)
        signed = tranche.Signer(keys["inv3"], CHAIN).transfer(asset="PY-1", to=keys["inv1"].public, units=1)
        r = c.submit(signed)
        c.close()
    finally:
        proxy.close()
    assert proxy.requests == 2
    # drop / stall: the first attempt was applied, the second got the stored receipt.
    assert r["duplicate"] is (mode != "overloaded") and r["txid"] == signed.txid
    assert node.client.account(keys["inv3"].public)["holdings"][0]["units"] == before - 1  # once only


def test_unavailable_keeps_the_signed_tx(world):
    keys, _ = world
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    signed = tranche.Signer(keys["inv1"], CHAIN).transfer(asset="PY-1", to=keys["inv2"].public, units=1)
    c = tranche.Client("127.0.0.1", port, timeout=1, attempts=2)
    with pytest.raises(tranche.Unavailable) as e:
        c.submit(signed)
    assert e.value.signed is signed


def test_page_iterators(node, world):
    keys, issuer = world
    c = node.client
    holders = list(c.holders("PY-1", limit=1))
    assert [h["account"] for h in holders] == sorted(keys[n].public for n in ("inv1", "inv2", "inv3"))
    assert sum(h["units"] for h in holders) == 600
    entries = list(c.entries(limit=3))
    assert [e["seq"] for e in entries] == list(range(1, c.head()["size"] + 1))
    r = c.submit(issuer.asset_distribute(asset="PY-1", amount=1001, kind="interest", memo="Q1"))
    payouts = list(c.payouts("PY-1", distribution=r["seq"], limit=2))
    assert len(payouts) == 3 and sum(p["amount"] for p in payouts) == 1001
    assert [a["asset"] for a in c.assets(limit=1)] == ["PY-1"]
    hist = list(c.history(keys["inv1"].public, limit=1))
    assert len(hist) >= 3 and [h["seq"] for h in hist] == sorted(h["seq"] for h in hist)
    with pytest.raises(ValueError):
        list(c.holders("PY-1", limit=1001))
    with pytest.raises(tranche.NotFound):
        c.asset("NOPE")


def test_a_cursor_that_does_not_advance_is_refused():
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = srv.accept()
        for line in conn.makefile("rb"):
            req = json.loads(line)
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": {
                "holders": [{"account": "a", "units": 1, "frozen": 0}], "next": "same", "size": 1}}).encode() + b"\n")
        conn.close()
    threading.Thread(target=serve, daemon=True).start()
    c = tranche.Client("127.0.0.1", srv.getsockname()[1], timeout=5)
    with pytest.raises(tranche.ProtocolError, match="came back twice"):
        list(c.holders("X"))
    c.close()
    srv.close()


def test_receipts_verify_offline_both_ways(node, world, tmp_path):
    keys, _ = world
    c = node.client
    signed = tranche.Signer(keys["inv2"], CHAIN).transfer(asset="PY-1", to=keys["inv1"].public, units=3)
    receipt = c.submit(signed)
    mine = c.export_proof(signed.txid, node.vkey)
    proven = tranche.verify_proof(mine, node.vkey, tx=signed.tx)
    assert (proven.seq, proven.txid, proven.time, proven.hash) == \
        (receipt["seq"], signed.txid, receipt["time"], receipt["hash"])
    # tranchectl verifies the library's file, and the library tranchectl's.
    (tmp_path / "py.proof").write_text(mine)
    r = node.ctl("proof", "verify", str(tmp_path / "py.proof"), "--vkey", node.vkey, "--json")
    assert json.loads(r.stdout)["seq"] == receipt["seq"]
    node.ctl("proof", "export", signed.txid, "--out", str(tmp_path / "c.proof"), "--vkey", node.vkey,
             "--rpc", node.address)
    c_file = (tmp_path / "c.proof").read_bytes()
    assert tranche.verify_proof(c_file, node.vkey, tx=signed.tx_bytes).seq == receipt["seq"]
    # Tampering, another key, another tx: each refused.
    other = str(tranche.Vkey(CHAIN, tranche.Key.generate().public_bytes))
    with pytest.raises(tranche.VerifyError):
        tranche.verify_proof(c_file, other)
    with pytest.raises(tranche.VerifyError, match="not the given tx"):
        tranche.verify_proof(c_file, node.vkey, tx=b"{}")
    lines = c_file.decode().split("\n")
    extra = bytearray(__import__("base64").b64decode(lines[1][6:]))
    extra[-1] ^= 0x01  # the entry's last sig byte: flipped, since setting it could leave it as it was
    lines[1] = "extra " + __import__("base64").b64encode(bytes(extra)).decode()
    with pytest.raises(tranche.VerifyError):
        tranche.verify_proof("\n".join(lines), node.vkey)
    with pytest.raises(tranche.VerifyError):
        tranche.verify_proof(c_file.replace(b"index ", b"index 1"), node.vkey)
    with pytest.raises(tranche.VerifyError):
        tranche.verify_proof(b"c2sp.org/tlog-proof@v1\nindex 0\n\n", node.vkey)


def test_checkpoints_and_consistency(node, world):
    keys, _ = world
    c = node.client
    old = c.verified_checkpoint(node.vkey)
    for i in range(3):
        c.submit(tranche.Signer(keys["inv1"], CHAIN).transfer(asset="PY-1", to=keys["inv2"].public, units=1))
    deadline = time.monotonic() + 10
    while (new := c.verified_checkpoint(node.vkey)).size < old.size + 3:
        assert time.monotonic() < deadline, "no new checkpoint within 10 s"
        time.sleep(0.2)
    proof = c.consistency(old.size, new.size)
    tranche.verify_checkpoint_extends(old, new, proof["path"])
    forged = tranche.Checkpoint(old.origin, old.size, bytes(32), old.text)
    with pytest.raises(tranche.VerifyError, match="fork or rewrite"):
        tranche.verify_checkpoint_extends(forged, new, proof["path"])
    head = c.head()
    e = c.entry(1)
    inc = c.proof(1, new.size)
    assert tranche.verify_inclusion(0, new.size, bytes.fromhex(e["hash"]), [bytes.fromhex(h) for h in inc["path"]],
                                    new.root)
    assert head["size"] >= new.size
