#!/usr/bin/python3
"""make_seeds.py - writes the seed corpora of tests/fuzz/corpus/<name>/.

Run from anywhere with /usr/bin/python3 (needs python3-cryptography); it
rewrites the four corpus directories. Fixed keys, so the corpus is stable:
  node key  seed = SHA-256("tranche-fuzz-node")   (signs notes/checkpoints)
  admin key seed = SHA-256("tranche-fuzz-admin")  (signs txs in corpus/rpc)
The harnesses fuzz_note.c and fuzz_rpc.c derive the same keys, chain
"fuzz.example/chain" and note name "fuzz.example/log".
"""
import base64
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import trclient as tc  # noqa: E402

CHAIN = "fuzz.example/chain"
NOTE_NAME = "fuzz.example/log"
NODE = tc.Key(hashlib.sha256(b"tranche-fuzz-node").digest())
ADMIN = tc.Key(hashlib.sha256(b"tranche-fuzz-admin").digest())
ALICE = tc.Key(hashlib.sha256(b"tranche-fuzz-alice").digest())
BOB = tc.Key(hashlib.sha256(b"tranche-fuzz-bob").digest())


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def write(corpus, name, data):
    d = os.path.join(HERE, "corpus", corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def tx(type_, key, id_, **fields):
    t = {"type": type_, "chain": CHAIN, "signer": key.pk, "id": id_}
    t.update(fields)
    return t


DOC = {"name": "prospectus.pdf", "sha256": hashlib.sha256(b"p").hexdigest()}
TXS = {
    "account_open": tx("account.open", ADMIN, "o1", account=ALICE.pk, roles=["issuer", "investor"],
                       jurisdiction="US", kyc=True),
    "account_update": tx("account.update", ADMIN, "u1", account=ALICE.pk, frozen=False, kyc=True),
    "account_recover": tx("account.recover", ADMIN, "r1", account=ALICE.pk, to=BOB.pk, reason="lost key \u00e9"),
    "asset_create": tx("asset.create", ALICE, "c1", asset="ACME-30", name="Acme 4.5% 2030", kind="bond",
                       currency="USD", principal=100000000, units=1000000, coupon_bps=450,
                       maturity="2030-06-30", rating="A+", risk_weight_pct=50,
                       rules={"jurisdictions": ["US", "GB"], "max_holders": 10, "min_units": 1,
                              "lockup_until": 0}, documents=[DOC]),
    "asset_update": tx("asset.update", ALICE, "au1", asset="ACME-30", rating="BBB", rules={}, documents=[]),
    "asset_issue": tx("asset.issue", ALICE, "i1", asset="ACME-30", to=BOB.pk, units=1000),
    "transfer": tx("transfer", BOB, "t1", asset="ACME-30", to=ALICE.pk, units=10, memo="x",
                   expires=9007199254740991),
    "transfer_force": tx("transfer.force", ADMIN, "f1", asset="ACME-30", **{"from": BOB.pk}, to=ALICE.pk,
                         units=1, reason="court order"),
    "holding_freeze": tx("holding.freeze", ADMIN, "hf1", asset="ACME-30", account=BOB.pk, units=0),
    "asset_redeem": tx("asset.redeem", ALICE, "rd1", asset="ACME-30", **{"from": BOB.pk}, units=5, amount=0),
    "asset_distribute": tx("asset.distribute", ALICE, "d1", asset="ACME-30", amount=12345, kind="interest"),
    "asset_status": tx("asset.status", ALICE, "s1", asset="ACME-30", status="matured"),
}
GENESIS = ('{"type":"genesis","chain":"%s","signer":"%s","id":"genesis","admin":"%s"}'
           % (CHAIN, NODE.pk, ADMIN.pk)).encode()


def json_seeds():
    seeds = {
        "obj": b'{"a":1,"b":[true,false,null],"c":{"d":"e\\u00e9\\ud83d\\ude00"}}',
        "num": b"0", "neg": b"-1.5e-3", "str": b'"\\"\\\\\\/\\b\\f\\n\\r\\t"',
        "arr_ws": b' [ 1 ,\t2 ,\r\n3 ] ', "dup": b'{"a":1,"a":2}', "dup_esc": b'{"a":1,"\\u0061":2}',
        "deep": b"[" * 17 + b"]" * 17, "depth16": b"[" * 16 + b"]" * 16,
        "nul_esc": b'"\\u0000"', "nul_raw": b'"a\x00b"', "bom": b"\xef\xbb\xbf{}",
        "overlong": b'"\xc0\xaf"', "surrogate": b'"\xed\xa0\x80"', "lone_esc": b'"\\ud800"',
        "trailing": b"{} x", "big_int": b"9007199254740992", "lead0": b"01", "minus0": b"-0",
        "utf8_4": "\"\U0010ffff\"".encode(), "many_keys": ("{" + ",".join('"k%d":%d' % (i, i) for i in range(200)) + "}").encode(),
        "empty": b"", "ws_only": b" \n", "vt": b"\x0b{}",
    }
    seeds.update({"tx_" + k: compact(v) for k, v in TXS.items()})
    for k, v in seeds.items():
        write("json", k, v)


def tx_seeds():
    for k, v in TXS.items():
        write("tx", k, compact(v))
    write("tx", "genesis", GENESIS)
    write("tx", "pretty", json.dumps(TXS["transfer"], indent=2).encode())
    write("tx", "unknown_field", compact(dict(TXS["transfer"], colour="red")))
    write("tx", "float_units", compact(TXS["asset_issue"]).replace(b'"units":1000', b'"units":1e3'))
    write("tx", "dup_units", compact(TXS["asset_issue"]).replace(b'"units":1000', b'"units":1,"units":1000'))
    write("tx", "bad_date", compact(TXS["asset_create"]).replace(b"2030-06-30", b"2030-02-30"))
    write("tx", "null_memo", compact(dict(TXS["transfer"], memo=None)))


def checkpoint(size, root, extra_sig=False):
    body = "%s\n%d\n%s\n" % (NOTE_NAME, size, base64.b64encode(root).decode())
    _, key_id = tc.vkey_of(NOTE_NAME, NODE.pk_bytes)
    sig = NODE.sign(body.encode())
    lines = "\u2014 %s %s\n" % (NOTE_NAME, base64.b64encode(key_id + sig).decode())
    if extra_sig:
        lines = "\u2014 witness.example/w %s\n" % base64.b64encode(b"\x01\x02\x03\x04" + b"\x00" * 64).decode() + lines
    return body, body + "\n" + lines


def note_seeds():
    vkey, _ = tc.vkey_of(NOTE_NAME, NODE.pk_bytes)
    write("note", "vkey", vkey)
    write("note", "vkey_chain", tc.vkey_of(CHAIN, NODE.pk_bytes)[0])
    extras = [b"entry-%d" % i for i in range(5)]
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in extras]
    root = tc.merkle_root(leaves)
    body, note = checkpoint(5, root)
    write("note", "checkpoint_body", body)
    write("note", "checkpoint_body_ext", body + "ext line\n")
    write("note", "checkpoint_note", note)
    write("note", "checkpoint_cosigned", checkpoint(5, root, extra_sig=True)[1])
    write("note", "checkpoint_badsig", note.replace(NOTE_NAME + "\n5", NOTE_NAME + "\n6", 1))
    write("note", "checkpoint_empty_tree", checkpoint(0, hashlib.sha256(b"").digest())[1])
    for i in (0, 3, 4):
        path = tc.inclusion_path(i, leaves)
        proof = "c2sp.org/tlog-proof@v1\nextra %s\nindex %d\n%s\n%s" % (
            base64.b64encode(extras[i]).decode(), i,
            "".join(base64.b64encode(p).decode() + "\n" for p in path), note)
        write("note", "proof_%d" % i, proof)
    write("note", "proof_noextra", "c2sp.org/tlog-proof@v1\nindex 0\n\n" + note)


def rpc(method, params=None, id_=1):
    r = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        r["params"] = params
    return r


def submit(t, key):
    b = compact(t)
    return rpc("tx.submit", {"tx": b.decode(), "sig": key.sign(tc.TX_DOMAIN + b).hex()}, 7)


def rpc_seeds():
    genesis_txid = hashlib.sha256(GENESIS).hexdigest()
    open_alice = submit(TXS["account_open"], ADMIN)
    seeds = {
        "head": rpc("ledger.head"), "head_params": rpc("ledger.head", {}), "status": rpc("node.status", {}, "s"),
        "discover": rpc("rpc.discover"), "entry": rpc("ledger.entry", {"seq": 1}),
        "entries": rpc("ledger.entries", {"from": 1, "limit": 1000}), "checkpoint": rpc("ledger.checkpoint"),
        "proof": rpc("ledger.proof", {"seq": 1, "size": 1}), "consistency": rpc("ledger.consistency", {"from": 1, "to": 1}),
        "tx_get": rpc("tx.get", {"txid": genesis_txid}), "tx_find": rpc("tx.find", {"signer": NODE.pk, "id": "genesis"}),
        "account_get": rpc("account.get", {"account": ADMIN.pk}),
        "history": rpc("account.history", {"account": ADMIN.pk, "cursor": None, "limit": 2}),
        "asset_get": rpc("asset.get", {"asset": "NOPE"}), "asset_list": rpc("asset.list", {"limit": 1}),
        "holders": rpc("asset.holders", {"asset": "A", "cursor": "x"}),
        "payouts": rpc("asset.payouts", {"asset": "A", "distribution": 3}),
        "exposure": rpc("risk.exposure", {"account": ADMIN.pk}),
        "submit_open": open_alice, "submit_badsig": dict(open_alice, params=dict(open_alice["params"], sig="00" * 64)),
        "check_open": rpc("tx.check", {"tx": open_alice["params"]["tx"], "sig": open_alice["params"]["sig"]}),
        "check_nosig": rpc("tx.check", {"tx": compact(TXS["transfer"]).decode()}),
        "submit_genesis": rpc("tx.submit", {"tx": GENESIS.decode(), "sig": "00" * 64}),
        "notification": {"jsonrpc": "2.0", "method": "ledger.head"},
        "notify_submit": {"jsonrpc": "2.0", "method": "tx.submit", "params": open_alice["params"]},
        "unknown_method": rpc("no.such"), "positional": rpc("ledger.entry", [1]),
        "unknown_param": rpc("ledger.head", {"x": 1}), "big_id": rpc("ledger.head", None, 9007199254740991),
        "float_param": rpc("ledger.entry", {"seq": 1.5}),
    }
    for k, v in seeds.items():
        write("rpc", k, compact(v))
    batch = [open_alice, rpc("ledger.head", None, 2), rpc("account.get", {"account": ALICE.pk}, 3),
             {"jsonrpc": "2.0", "method": "ledger.head"}]
    write("rpc", "batch_submit_then_query", compact(batch))
    write("rpc", "batch_empty", b"[]")
    write("rpc", "batch_101", compact([rpc("ledger.head", None, i) for i in range(101)]))
    write("rpc", "batch_garbage", b'[1,"x",null,{}]')
    write("rpc", "batch_notifications", compact([{"jsonrpc": "2.0", "method": "ledger.head"}] * 3))
    write("rpc", "dup_key", b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"id":2}')
    write("rpc", "extra_member", b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"x":0}')
    write("rpc", "not_json", b"ledger.head")
    write("rpc", "id_exp", b'{"jsonrpc":"2.0","method":"ledger.head","id":1e300}')
    write("rpc", "id_neg_frac", b'{"jsonrpc":"2.0","method":"ledger.head","id":-0.5}')
    # the forms of a lone tx.submit (rpc.c reads them without cJSON, or hands them to the general path)
    p = open_alice["params"]
    tx_text, sig = json.dumps(p["tx"]).encode(), p["sig"].encode()
    write("rpc", "submit_reordered", b'{"id":"a\\u00e9\\"b","params":{"sig":"' + sig + b'","tx":' + tx_text +
          b'},"method":"tx.submit","jsonrpc":"2.0"}')
    write("rpc", "submit_escaped", b'{"jsonrpc":"\\u0032.0","method":"\\u0074x.submit","params":{"tx":' +
          tx_text.replace(b"a", b"\\u0061") + b',"sig":"\\u00' + b"%02x" % sig[0] + sig[1:] + b'"},"id":null}')
    write("rpc", "submit_min_size", compact(dict(open_alice, params=dict(p, min_size=1))))


def main():
    for name in ("json", "tx", "note", "rpc"):
        shutil.rmtree(os.path.join(HERE, "corpus", name), ignore_errors=True)
    json_seeds()
    tx_seeds()
    note_seeds()
    rpc_seeds()


if __name__ == "__main__":
    main()
