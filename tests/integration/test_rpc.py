#!/usr/bin/python3
"""test_rpc.py - JSON-RPC 2.0 semantics of tranched over newline framing (PROTOCOL.md section 5).

The cases follow the "Examples" section of the JSON-RPC 2.0 specification,
adapted to tranche's methods (params are by name), then the framing limits,
pipelining, rpc.discover, the fresh chain's genesis entry, pagination and
robustness against garbage.  Prints TAP.
"""
import hashlib
import json
import os
import re
import socket
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)

SECTION5_METHODS = [
    "tx.submit", "tx.check", "tx.get", "tx.find",
    "ledger.head", "ledger.entry", "ledger.entries", "ledger.checkpoint", "ledger.proof",
    "ledger.consistency",
    "account.get", "account.history",
    "asset.get", "asset.list", "asset.holders", "asset.payouts",
    "risk.exposure", "node.status", "rpc.discover",
]


def is_err(resp, code, id_, msg):
    ok = (isinstance(resp, dict) and resp.get("jsonrpc") == "2.0" and "result" not in resp
          and isinstance(resp.get("error"), dict) and resp["error"].get("code") == code
          and isinstance(resp["error"].get("message"), str) and "id" in resp and resp["id"] == id_)
    return T.check(ok, msg, "got %r; want error %d with id %r" % (resp, code, id_))


def is_result(resp, id_, msg):
    ok = (isinstance(resp, dict) and resp.get("jsonrpc") == "2.0" and "error" not in resp
          and "result" in resp and resp.get("id") == id_)
    return T.check(ok, msg, "got %r; want a result with id %r" % (resp, id_))


def fresh(node):
    """A new connection (the old one may have been closed on purpose)."""
    return node.connect()


# ---------------------------------------------------------------- spec examples

def spec_examples(node):
    c = fresh(node)
    # rpc call with named parameters
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","params":{},"id":1}\n')
    r = c.recv()
    is_result(r, 1, "named params {} -> result with the same id")
    T.check(isinstance(r.get("result"), dict) and r["result"].get("size") == 1,
            "ledger.head size 1 on a fresh chain", r)
    # params may be omitted for a method without params
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":2}\n')
    is_result(c.recv(), 2, "params omitted -> result")
    # string ids are echoed
    c.send_raw(b'{"jsonrpc":"2.0","method":"node.status","params":{},"id":"abc-\\u00e9"}\n')
    is_result(c.recv(), "abc-\u00e9", "string id echoed exactly")
    c.send_raw(b'{"jsonrpc":"2.0","method":"node.status","params":{},"id":9007199254740991}\n')
    is_result(c.recv(), 9007199254740991, "largest integer id echoed exactly")
    # positional params: a structured value, but tranche takes params by name only
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.entry","params":[1],"id":3}\n')
    is_err(c.recv(), -32602, 3, "positional params (array) -> -32602")
    # a notification: no response at all; the next response is for the next request
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","params":{}}\n')
    c.send_raw(b'{"jsonrpc":"2.0","method":"no.such.method"}\n')
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","params":{},"id":4}\n')
    is_result(c.recv(), 4, "notifications (existing and unknown method) get no response")
    # non-existent method
    c.send_raw(b'{"jsonrpc":"2.0","method":"foobar","id":"1"}\n')
    is_err(c.recv(), -32601, "1", "non-existent method -> -32601")
    # invalid JSON
    c.send_raw(b'{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]\n')
    is_err(c.recv(), -32700, None, "invalid JSON -> -32700 with id null")
    # invalid request object
    c.send_raw(b'{"jsonrpc":"2.0","method":1,"params":"bar"}\n')
    is_err(c.recv(), -32600, None, "method not a string -> -32600 with id null")
    # an invalid request whose id is readable: the id may be echoed or null
    c.send_raw(b'{"jsonrpc":"1.0","method":"ledger.head","id":5}\n')
    r = c.recv()
    is_err(r, -32600, r.get("id") if r.get("id") in (5, None) else 5, "jsonrpc not \"2.0\" -> -32600")
    c.send_raw(b'{"method":"ledger.head","id":6}\n')
    r = c.recv()
    is_err(r, -32600, r.get("id") if r.get("id") in (6, None) else 6, "jsonrpc member missing -> -32600")
    c.send_raw(b'"just a string"\n')
    is_err(c.recv(), -32600, None, "a string is not a request -> -32600")
    # batch, invalid JSON
    c.send_raw(b'[{"jsonrpc":"2.0","method":"ledger.head","params":{},"id":"1"},'
               b'{"jsonrpc":"2.0","method"]\n')
    r = c.recv()
    T.check(isinstance(r, dict), "batch with invalid JSON -> one object, not an array", r)
    is_err(r, -32700, None, "batch with invalid JSON -> -32700 id null")
    # empty array
    c.send_raw(b'[]\n')
    r = c.recv()
    T.check(isinstance(r, dict), "empty batch -> one object, not an array", r)
    is_err(r, -32600, None, "empty batch -> -32600 id null")
    # invalid batch, not empty
    c.send_raw(b'[1]\n')
    r = c.recv()
    T.check(isinstance(r, list) and len(r) == 1, "[1] -> an array of one response", r)
    if isinstance(r, list) and r:
        is_err(r[0], -32600, None, "[1] -> -32600 id null")
    c.send_raw(b'[1,2,3]\n')
    r = c.recv()
    T.check(isinstance(r, list) and len(r) == 3, "[1,2,3] -> an array of three responses", r)
    if isinstance(r, list):
        for i, x in enumerate(r):
            is_err(x, -32600, None, "[1,2,3] element %d -> -32600" % i)
    # mixed batch with notifications and errors
    c.send_raw(b'[{"jsonrpc":"2.0","method":"ledger.head","params":{},"id":"1"},'
               b'{"jsonrpc":"2.0","method":"node.status","params":{}},'
               b'{"jsonrpc":"2.0","method":"ledger.entry","params":{"seq":1},"id":"2"},'
               b'{"foo":"boo"},'
               b'{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},'
               b'{"jsonrpc":"2.0","method":"node.status","id":"9"}]\n')
    r = c.recv()
    T.check(isinstance(r, list) and len(r) == 5, "mixed batch -> 5 responses (notification omitted)", r)
    if isinstance(r, list) and len(r) == 5:
        is_result(r[0], "1", "mixed batch [0] ledger.head result")
        is_result(r[1], "2", "mixed batch [1] ledger.entry result, in request order")
        is_err(r[2], -32600, None, "mixed batch [2] {\"foo\":\"boo\"} -> -32600")
        is_err(r[3], -32601, "5", "mixed batch [3] foo.get -> -32601")
        is_result(r[4], "9", "mixed batch [4] node.status result")
    # all notifications: nothing at all
    c.send_raw(b'[{"jsonrpc":"2.0","method":"ledger.head","params":{}},'
               b'{"jsonrpc":"2.0","method":"node.status"}]\n')
    T.check(c.silent(1.0), "batch of notifications only -> no response line")
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":7}\n')
    is_result(c.recv(), 7, "next request after a notification batch answered normally")
    c.close()


# ---------------------------------------------------------------- params

def params_checks(node):
    c = fresh(node)
    cases = [
        ("ledger.head", {"bogus": 1}, "unknown param"),
        ("ledger.entry", {}, "missing param seq"),
        ("ledger.entry", {"seq": "1"}, "seq as a string"),
        ("ledger.entry", {"seq": 1.5}, "seq not an integer"),
        ("ledger.entry", {"seq": 1, "extra": True}, "unknown param next to a valid one"),
        ("ledger.entries", {"from": 1, "limit": 0}, "limit 0"),
        ("ledger.entries", {"from": 1, "limit": 1001}, "limit 1001"),
        ("ledger.entries", {"from": 1, "limit": "10"}, "limit as a string"),
        ("tx.get", {"txid": 12}, "txid as a number"),
        ("tx.submit", {"tx": {"type": "transfer"}, "sig": "00"}, "tx as an object, not a string"),
        ("tx.submit", {"sig": "00" * 64}, "tx missing"),
        ("account.get", {}, "account missing"),
        ("asset.list", {"limit": -1}, "negative limit"),
    ]
    for method, params, what in cases:
        req = c.request(method, params)
        c.send_obj(req)
        is_err(c.recv(), -32602, req["id"], "%s %s -> -32602" % (method, what))
    req = {"jsonrpc": "2.0", "method": "ledger.head", "params": "bar", "id": 99}
    c.send_obj(req)
    r = c.recv()
    T.check(isinstance(r, dict) and r.get("error", {}).get("code") in (-32600, -32602),
            "params as a string -> -32600 (not a structured value)", r)
    # -32004 for unknown things
    for method, params in (("ledger.entry", {"seq": 999999}),
                           ("tx.get", {"txid": "ab" * 32}),
                           ("tx.find", {"signer": tc.Key().pk, "id": "nope"}),
                           ("account.get", {"account": tc.Key().pk}),
                           ("asset.get", {"asset": "NO-SUCH"})):
        req = c.request(method, params)
        c.send_obj(req)
        is_err(c.recv(), -32004, req["id"], "%s of an unknown key -> -32004" % method)
    c.close()


# ---------------------------------------------------------------- framing limits

def framing_limits(node):
    # a line just under the limit (with its newline exactly 1 MiB) is served
    c = fresh(node)
    req = b'{"jsonrpc":"2.0","method":"ledger.head","id":1}'
    pad = tc.LINE_MAX - 1 - len(req)
    c.send_raw(req + b" " * pad + b"\n")
    is_result(c.recv(timeout=30), 1, "line of exactly 1 MiB including the newline is served")
    c.close()
    # over the limit: -32600 id null, then the connection closes.  The bytes are sent
    # without a newline first so the daemon has read everything when it closes.
    c = fresh(node)
    try:
        c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"x":"' + b"a" * (tc.LINE_MAX + 16))
    except OSError as ex:
        T.comment("send of the over-long line stopped: %s" % ex)
    try:
        line = c.recv_line(timeout=10)
    except socket.timeout:
        T.comment("no answer before a newline: sending the newline")
        try:
            c.send_raw(b'"}\n')
        except OSError:
            pass
        line = c.recv_line(timeout=10)
    r = tc.loads_strict(line) if line else None
    is_err(r, -32600, None, "line over 1 MiB -> -32600 with id null")
    T.check(c.at_eof(10), "connection closed after the over-long line")
    c.close()
    # the daemon still serves
    with fresh(node) as c2:
        T.check(c2.call("ledger.head")["size"] >= 1, "daemon serves after an over-long line")
    # batches: 100 ok, 101 -> one -32600
    c = fresh(node)
    batch = [{"jsonrpc": "2.0", "method": "ledger.head", "id": i} for i in range(100)]
    c.send_obj(batch)
    r = c.recv()
    T.check(isinstance(r, list) and [x.get("id") for x in r] == list(range(100)),
            "batch of 100 answered in order", r if not isinstance(r, list) else len(r))
    batch.append({"jsonrpc": "2.0", "method": "ledger.head", "id": 100})
    c.send_obj(batch)
    r = c.recv()
    T.check(isinstance(r, dict), "batch of 101 -> one object, not an array",
            r if not isinstance(r, list) else "array of %d" % len(r))
    is_err(r, -32600, None, "batch of 101 -> -32600 id null")
    c.close()


def pipelining(node):
    c = fresh(node)
    n = 200
    methods = ["ledger.head", "node.status", "ledger.entry"]
    data = b""
    for i in range(n):
        m = methods[i % 3]
        p = {"seq": 1} if m == "ledger.entry" else {}
        data += json.dumps({"jsonrpc": "2.0", "method": m, "params": p, "id": i}).encode() + b"\n"
    c.send_raw(data)
    ids, errors = [], 0
    for i in range(n):
        r = c.recv(timeout=30)
        ids.append(r.get("id"))
        errors += "error" in r
    T.check(ids == list(range(n)), "%d pipelined requests answered in request order" % n,
            ids[:80])
    T.eq(errors, 0, "no errors among pipelined requests")
    # a pipelined mix of requests, notifications and batches keeps the order
    data = (b'{"jsonrpc":"2.0","method":"ledger.head","id":"a"}\n'
            b'{"jsonrpc":"2.0","method":"ledger.head"}\n'
            b'[{"jsonrpc":"2.0","method":"ledger.head","id":"b"},{"jsonrpc":"2.0","method":"x","id":"c"}]\n'
            b'not json\n'
            b'{"jsonrpc":"2.0","method":"node.status","id":"d"}\n')
    c.send_raw(data)
    r1, r2, r3, r4 = c.recv(), c.recv(), c.recv(), c.recv()
    T.check(r1.get("id") == "a" and isinstance(r2, list) and [x.get("id") for x in r2] == ["b", "c"]
            and r3.get("error", {}).get("code") == -32700 and r4.get("id") == "d",
            "pipelined mix of request, notification, batch, garbage answered in order",
            [r1, r2, r3, r4])
    c.close()


# ---------------------------------------------------------------- discover, genesis, pagination

def discover(node):
    doc = node.call("rpc.discover")
    T.check(isinstance(doc, dict) and isinstance(doc.get("openrpc"), str), "rpc.discover has openrpc version",
            doc if not isinstance(doc, dict) else list(doc))
    T.check(isinstance(doc.get("info"), dict), "rpc.discover has info")
    names = [m.get("name") for m in doc.get("methods", []) if isinstance(m, dict)]
    missing = [m for m in SECTION5_METHODS if m not in names]
    T.check(not missing, "rpc.discover lists every method of section 5", "missing %r" % missing)
    T.check(len(names) == len(set(names)), "rpc.discover names each method once")


def genesis(node):
    head = node.call("ledger.head")
    T.eq(head.get("size"), 1, "ledger.head size is 1 on a fresh chain")
    e = node.call("ledger.entry", {"seq": 1})
    T.check(set(e) >= {"seq", "time", "prev", "hash", "txid", "tx", "sig"}, "ledger.entry has its fields",
            sorted(e))
    try:
        signer = json.loads(e["tx"])["signer"]
    except Exception:  # noqa: BLE001
        signer = None
    want = ('{"type":"genesis","chain":"%s","signer":"%s","id":"genesis","admin":"%s"}'
            % (node.chain, signer, node.admin.pk))
    T.eq(e.get("tx"), want, "genesis tx bytes exactly as section 4 gives them")
    nk = os.path.join(node.datadir, "node.key")
    if os.path.exists(nk):
        try:
            T.eq(signer, tc.Key.load(nk).pk, "genesis signer is the key in DIR/node.key")
        except ValueError as ex:
            T.check(False, "DIR/node.key is a seed file", str(ex))
    T.check(signer != node.admin.pk, "node key differs from the admin key")
    T.eq(node.printed_admin_pk, node.admin.pk, "tranchectl init printed the admin public key")
    st = os.stat(node.admin_key_path)
    T.eq(st.st_mode & 0o777, 0o600, "admin key file has mode 0600")
    T.eq(e.get("seq"), 1, "entry seq 1")
    T.eq(e.get("prev"), "00" * 32, "genesis prev is 32 zero bytes")
    T.eq(e.get("txid"), hashlib.sha256(e["tx"].encode()).hexdigest(), "genesis txid = SHA-256(tx)")
    T.check(tc.verify_sig(signer, bytes.fromhex(e["sig"]), tc.TX_DOMAIN + e["tx"].encode()),
            "genesis signature verifies under the node key")
    h = tc.entry_hash(1, e["time"], b"\x00" * 32, bytes.fromhex(e["txid"]), bytes.fromhex(e["sig"]))
    T.eq(e.get("hash"), h.hex(), "genesis entry hash recomputed per section 3")
    T.eq(head.get("hash"), h.hex(), "ledger.head hash is entry 1's hash")
    T.eq(head.get("root"), h.hex(), "ledger.head root of a size-1 tree is the leaf hash")
    T.eq(head.get("time"), e.get("time"), "ledger.head time is entry 1's time")
    # the raw line prints integers as plain digits
    c = node.conn
    c.call("ledger.entry", {"seq": 1})
    raw = c.last_raw.decode()
    T.check(re.search(r'"time":[1-9][0-9]*[,}]', raw) is not None and "e+" not in raw.lower(),
            "entry time printed as plain digits", raw[:300])
    # the admin account exists as genesis made it
    a = node.call("account.get", {"account": node.admin.pk})
    T.eq((a.get("roles"), a.get("kyc"), a.get("jurisdiction"), a.get("frozen")),
         (["admin"], True, "ZZ", False), "genesis admin: roles [admin], kyc, ZZ, not frozen")
    # node.status mentions the chain and the node key
    st = node.call("node.status")
    flat = json.dumps(st)
    T.check(node.chain in flat and signer in flat, "node.status names the chain and the node key",
            flat[:400])
    # the genesis cannot be submitted
    r = node.submit(e["tx"], None, sig=e["sig"])
    T.eq(tc.reason_of(r), "invalid", "tx.submit of the genesis -> invalid (section 4), not a duplicate receipt")


def pagination(node):
    admin = node.admin
    for i in range(6):
        r = node.submit(node.tx("account.open", admin, account=tc.Key().pk, roles=["investor"],
                                jurisdiction="US", kyc=True), admin)
        T.check(isinstance(r, dict) and r.get("seq") == i + 2 and r.get("duplicate") is False,
                "account.open %d accepted at seq %d" % (i, i + 2), r)
    size = node.call("ledger.head")["size"]
    T.eq(size, 7, "ledger.head size 7 after six accepted txs")
    seen, frm, pages = [], 1, 0
    while frm is not None and pages < 20:
        r = node.call("ledger.entries", {"from": frm, "limit": 3})
        pages += 1
        T.check(len(r["entries"]) <= 3, "page %d holds at most limit entries" % pages)
        seen += [e["seq"] for e in r["entries"]]
        frm = r.get("next")
    T.eq(seen, list(range(1, 8)), "ledger.entries pages cover 1..7 in order, no overlap")
    T.eq(pages, 3, "7 entries at limit 3 take 3 pages, the last with next null")
    r = node.call("ledger.entries", {"from": 1, "limit": 7})
    T.check(len(r["entries"]) == 7 and r.get("next") is None, "limit = size: one page, next null", r.get("next"))
    r = node.call("ledger.entries", {"from": 5, "limit": 100})
    T.eq([e["seq"] for e in r["entries"]], [5, 6, 7], "ledger.entries from 5")
    r = node.call("ledger.entries", {"from": 1})
    T.eq(len(r["entries"]), 7, "ledger.entries default limit covers a small journal")
    ok, msg, leaves = tc.check_chain(node.all_entries(page=2))
    T.check(ok, "entry hashes and prev links recomputed: " + msg, msg)
    head = node.call("ledger.head")
    T.eq(head.get("root"), tc.merkle_root(leaves).hex(), "ledger.head root = recomputed RFC 9162 root")
    # checkpoint: eventually covers the journal and is signed by the node key
    node_pk = bytes.fromhex(json.loads(node.call("ledger.entry", {"seq": 1})["tx"])["signer"])
    deadline = time.monotonic() + 5
    cp = None
    while time.monotonic() < deadline:
        cp = node.call("ledger.checkpoint")
        if cp.get("size") == 7:
            break
        time.sleep(0.2)
    T.eq(cp.get("size"), 7, "ledger.checkpoint reaches the journal size within seconds")
    vkey, _ = tc.vkey_of(node.chain, node_pk)
    T.eq(cp.get("vkey"), vkey, "ledger.checkpoint vkey per section 3")
    try:
        n, root = tc.parse_checkpoint(cp["checkpoint"], node.chain, node_pk)
        T.check(n == cp["size"] and root == tc.merkle_root(leaves[:n]),
                "checkpoint note verifies and its root is the recomputed root")
    except Exception as ex:  # noqa: BLE001
        T.check(False, "checkpoint note verifies", "%s\n%r" % (ex, cp))
    # RFC 9162 proofs for every (seq, size) and (from, to) of the 7-entry log
    bad_inc, bad_con = [], []
    for size in range(1, 8):
        root = tc.merkle_root(leaves[:size])
        for seq in range(1, size + 1):
            p = node.call("ledger.proof", {"seq": seq, "size": size})
            path = [bytes.fromhex(x) for x in p.get("path", [])]
            if not (p.get("seq") == seq and p.get("size") == size and p.get("leaf") == leaves[seq - 1].hex()
                    and path == tc.inclusion_path(seq - 1, leaves[:size])
                    and tc.verify_inclusion(seq - 1, size, leaves[seq - 1], path, root)):
                bad_inc.append((seq, size, p))
        for frm in range(1, size + 1):
            p = node.call("ledger.consistency", {"from": frm, "to": size})
            path = [bytes.fromhex(x) for x in p.get("path", [])]
            if not (p.get("from") == frm and p.get("to") == size
                    and path == tc.consistency_path(frm, leaves[:size])
                    and tc.verify_consistency(frm, size, tc.merkle_root(leaves[:frm]), root, path)):
                bad_con.append((frm, size, p))
    T.check(not bad_inc, "ledger.proof: all 28 inclusion proofs are the RFC 9162 paths and verify", bad_inc[:3])
    T.check(not bad_con, "ledger.consistency: all 28 proofs are the RFC 9162 proofs and verify", bad_con[:3])
    for method, params in (("ledger.proof", {"seq": 1, "size": 8}), ("ledger.proof", {"seq": 5, "size": 4}),
                           ("ledger.consistency", {"from": 3, "to": 8}), ("ledger.consistency", {"from": 5, "to": 4})):
        r = node.roe(method, params)
        T.check(tc.is_error(r) and r.get("code") in (-32602, -32004), "%s %r -> an error (-32602/-32004)"
                % (method, params), r)


# ---------------------------------------------------------------- garbage

def garbage(node):
    c = fresh(node)
    # The first bytes choose the framing (section 5.1): a JSON request first, so
    # garbage afterwards is judged line by line.
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":"first"}\n')
    T.check(c.recv(timeout=15).get("id") == "first", "a line-framed connection for the garbage cases")
    cases = [
        (b"\xff\xfe\xfd\n", "invalid UTF-8"),
        (b'{"jsonrpc":"2.0","method":"ledger.head","id":"\xc0\xaf"}\n', "overlong UTF-8 in a string"),
        (b'{"jsonrpc":"2.0","method":"ledger.head","id":"\xed\xa0\x80"}\n', "surrogate in UTF-8"),
        (b'{"jsonrpc":"2.0",\x00"method":"ledger.head","id":1}\n', "raw NUL byte"),
        (b"\x00\x00\x00\n", "only NUL bytes"),
        (b'\xef\xbb\xbf{"jsonrpc":"2.0","method":"ledger.head","id":1}\n', "byte-order mark"),
        (b'{"jsonrpc":"2.0","method":"ledger.head","id":1} x\n', "trailing garbage"),
        (b'{"jsonrpc":"2.0","method":"ledger.head","id":01}\n', "leading zero number"),
        (b'{"jsonrpc":"2.0","method":"ledger.head","id":1,"id":2}\n', "duplicate member"),
        (b"[" * 100000 + b"]" * 100000 + b"\n", "deep nesting (100000 arrays)"),
        (b'{"a":' * 50000 + b"1" + b"}" * 50000 + b"\n", "deep nesting (50000 objects)"),
        (b"[" * 1000 + b"\n", "unterminated deep nesting"),
        (b"\x1b[2J\r\n", "terminal escape"),
    ]
    for data, what in cases:
        c.send_raw(data)
        r = c.recv(timeout=15)
        ok = (isinstance(r, dict) and isinstance(r.get("error"), dict)
              and r["error"].get("code") in (-32700, -32600) and r.get("id") is None)
        if not ok and what.startswith("deep nesting") and isinstance(r, list) and r:
            # valid JSON: a batch whose elements are not requests -> an array of -32600
            ok = all(isinstance(x, dict) and x.get("error", {}).get("code") == -32600 for x in r)
        T.check(ok, "%s -> -32700/-32600 error(s) with id null" % what, str(r)[:300])
        c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":"after"}\n')
        r2 = c.recv(timeout=15)
        T.check(r2.get("id") == "after" and "result" in r2, "connection still serves after %s" % what, r2)
    # strictness of -32700 for the plain cases (not the deep ones, where -32600 is acceptable)
    for data, what in ((b"\xff\xfe\n", "invalid UTF-8"), (b'{"jsonrpc":"2.0","id":01}\n', "leading zero"),
                       (b'{"jsonrpc":"2.0","method":"ledger.head","id":1,}\n', "trailing comma")):
        c.send_raw(data)
        r = c.recv()
        T.check(r.get("error", {}).get("code") == -32700, "%s -> exactly -32700" % what, r)
    # an empty line and a line of blanks: not JSON
    c.send_raw(b"\n")
    c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id":"x"}\n')
    r = c.recv()
    if r.get("id") != "x":
        T.check(r.get("error", {}).get("code") == -32700, "empty line -> -32700 (or ignored)", r)
        r = c.recv()
    T.eq(r.get("id"), "x", "request after an empty line answered")
    # a client that vanishes mid-line does not hurt
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b'{"jsonrpc":"2.0","method":"led')
    s.close()
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b'{"jsonrpc":"2.0","method":"ledger.head","id":1}\n' * 50)
    s.close()  # closes with responses unread
    c.close()
    with fresh(node) as c3:
        T.check(c3.call("ledger.head")["size"] >= 1, "daemon serves after garbage and vanished clients")
    T.check(node.alive(), "daemon process alive after garbage")


def history_after_submit(node):
    """History rows are written a while after their entries; a query still sees every tx answered
    before it, and a tx.submit earlier in the same batch."""
    admin, k = node.admin, tc.Key()
    r = node.submit(node.tx("account.open", admin, account=k.pk, roles=["investor"], jurisdiction="US",
                            kyc=True), admin)
    T.check(isinstance(r, dict) and "seq" in r, "account.open accepted", r)
    h = node.call("account.history", {"account": k.pk})
    T.eq([e["seq"] for e in h["entries"]], [r["seq"]], "account.history right after the receipt lists it")
    T.check(h["size"] >= r["seq"], "its size (%d) covers the entry (%d)" % (h["size"], r["seq"]))
    tx = tc.tx_bytes(node.tx("account.update", admin, account=k.pk, kyc=False))
    c = node.conn
    c.send_obj([{"jsonrpc": "2.0", "method": "tx.submit", "id": 1, "params": {"tx": tx.decode(),
                                                                               "sig": tc.sign_tx(tx, admin)}},
                {"jsonrpc": "2.0", "method": "account.history", "id": 2, "params": {"account": k.pk}}])
    resp = c.recv(timeout=20)
    ok = isinstance(resp, list) and len(resp) == 2 and "result" in resp[0] and "result" in resp[1]
    T.check(ok, "batch [tx.submit, account.history] answered", resp)
    if ok:
        seq2 = resp[0]["result"]["seq"]
        T.eq([e["seq"] for e in resp[1]["result"]["entries"]], [r["seq"], seq2],
             "account.history after a tx.submit in the same batch lists that tx")
    st = node.call("node.status")["derived"]
    T.check(st["written_through"] >= r["seq"] and st["queued_bytes_max"] > 0 and st["writes"] >= 1
            and st["failing"] is False,
            "node.status derived: the state tables written through the queried entries, bound and writes", st)
    T.check(isinstance(st.get("lookups_through"), int) and 1 <= st["lookups_through"] <= st["written_through"],
            "node.status derived: the lookup tables' mark, at most the derived mark (written late)", st)
    state = node.call("node.status")["state"]
    T.check(state["accounts"] >= 2 and state["keys_max"] > state["keys"] and state["load_ms"] >= 0,
            "node.status state: the in-memory state's size and bounds", state)


def exact_ids(node):
    """A number id comes back as the very bytes the request wrote (issue #12, finding 12):
    not 1.8446744073709552e+19 for 2^64, not null for 1e400."""
    c = fresh(node)
    ids = [b"18446744073709551616", b"-12345678901234567890", b"1e400", b"1.50", b"-0", b"1E+2",
           b"9999999999999999", b"9007199254740993"]
    for i in ids:
        c.send_raw(b'{"jsonrpc":"2.0","method":"ledger.head","id": ' + i + b' }\n')
        line = c.recv_line()
        T.check(line is not None and line.endswith(b',"id":' + i + b"}") and b'"result":' in line,
                "single request: id %s echoed exactly" % i.decode(), line)
    c.send_raw(b'{"jsonrpc":"2.0","method":"no.such","id":1e400}\n')
    line = c.recv_line()
    T.check(line is not None and line.endswith(b',"id":1e400}') and b"-32601" in line,
            "an error answer echoes id 1e400 exactly", line)
    batch = b"[" + b",".join(b'{"jsonrpc":"2.0","method":"ledger.head","id":' + i + b"}" for i in ids) + b"]\n"
    c.send_raw(batch)
    line = c.recv_line()
    found = re.findall(rb'"id":([^}]*)\}', line or b"")
    T.eq(found, ids, "batch: every id echoed exactly, in order")
    c.close()


def submit_line_forms(node):
    """A lone tx.submit line is read straight from its bytes (daemon/rpc.c, "the plain tx.submit
    line"); every other form takes the general path.  Both must answer alike: member order,
    escapes anywhere, each id kind, a notification, and the near misses that must fall back."""
    admin = node.admin
    c = fresh(node)

    def line_for(tx, order=("jsonrpc", "method", "params", "id"), **over):
        b = tc.tx_bytes(tx)
        parts = {"jsonrpc": b'"2.0"', "method": b'"tx.submit"',
                 "params": b'{"tx":' + json.dumps(b.decode()).encode() + b',"sig":"' + tc.sign_tx(b, admin).encode() + b'"}'}
        parts.update(over)
        order = list(order) + [k for k in parts if k not in order]
        return b"{" + b",".join(b'"' + k.encode() + b'":' + parts[k] for k in order if k in parts) + b"}\n"

    def opened():
        return node.tx("account.open", admin, account=tc.Key().pk, roles=["investor"], jurisdiction="US", kyc=True)

    tx = opened()
    c.send_raw(line_for(tx, id=b'"a\\u00e9\\"b"', order=("id", "params", "method", "jsonrpc")))
    r = c.recv()
    is_result(r, 'a\u00e9"b', "members in another order, an escaped string id: a receipt, the id decoded")
    T.check(r.get("result", {}).get("duplicate") is False, "the tx was accepted", r)

    c.send_raw(line_for(tx, id=b"1e400"))
    line = c.recv_line()
    T.check(line is not None and line.endswith(b',"id":1e400}') and b'"duplicate":true' in line,
            "the same tx again, number id 1e400: a duplicate receipt, the id echoed exactly", line)

    c.send_raw(line_for(opened(), id=b"null"))
    is_result(c.recv(), None, "id null: a receipt with id null")

    quiet = opened()
    c.send_raw(line_for(quiet))  # a notification: never answered, but applied
    T.check(c.silent(0.5), "a tx.submit notification gets no answer")
    c.send_raw(line_for(quiet, id=b"7"))
    r = c.recv()
    T.check(is_result(r, 7, "the notification's tx resubmitted") and r["result"].get("duplicate") is True,
            "the notification's tx was applied (its resubmission is a duplicate)", r)

    tx = opened()
    b = tc.tx_bytes(tx)
    escaped_tx = json.dumps(b.decode()).replace("a", "\\u0061").encode()
    sig = tc.sign_tx(b, admin)
    escaped_sig = ("\\u%04x" % ord(sig[0]) + sig[1:]).encode()
    c.send_raw(line_for(tx, id=b"8", method=b'"\\u0074x.submit"', params=b'{"sig":"' + escaped_sig + b'","tx":' + escaped_tx + b"}"))
    r = c.recv()
    T.check(is_result(r, 8, "escapes in the method, the tx text and the sig")
            and r["result"].get("duplicate") is False, "escaped forms are the same request", r)

    tx = opened()
    sig = tc.sign_tx(tc.tx_bytes(tx), admin).encode()
    txs = json.dumps(tc.tx_bytes(tx).decode()).encode()
    near = [
        (b'{"tx":' + txs + b',"sig":"' + sig + b'","min_size":1}', {}, -32602, "an extra param (min_size)"),
        (b'{"tx":' + txs + b',"sig":"' + sig[:-2] + b'"}', {}, -32602, "a short sig"),
        (b'{"tx":' + txs + b',"sig":"' + sig.upper() + b'"}', {}, -32602, "an uppercase sig"),
        (b'{"tx":' + txs + b'}', {}, -32602, "no sig"),
        (b'{"tx":{},"sig":"' + sig + b'"}', {}, -32602, "a tx that is not a string"),
        (b'[' + txs + b',"' + sig + b'"]', {}, -32602, "params by position"),
        (None, {"extra": b"1"}, -32600, "an extra top-level member"),
        (None, {"jsonrpc": b'"1.0"'}, -32600, "jsonrpc 1.0"),
        (None, {"id": b"{}"}, -32600, "an object id"),
    ]
    for params, over, code, what in near:
        parts = dict(over)
        if params is not None:
            parts["params"] = params
        parts.setdefault("id", b"9")
        c.send_raw(line_for(tx, **parts))
        r = c.recv()
        is_err(r, code, None if code == -32600 and b"{}" == parts["id"] else 9, what + " -> %d" % code)
    r = node.submit(tx, admin)
    T.check(isinstance(r, dict) and r.get("duplicate") is False, "none of the near misses applied the tx", r)
    c.close()


def main():
    node = tc.Node()
    try:
        node.init()
        node.start()
        T.section("spec examples", spec_examples, node)
        T.section("genesis", genesis, node)
        T.section("params", params_checks, node)
        T.section("discover", discover, node)
        T.section("pagination", pagination, node)
        T.section("pipelining", pipelining, node)
        T.section("history after submit", history_after_submit, node)
        T.section("framing limits", framing_limits, node)
        T.section("garbage", garbage, node)
        T.section("exact ids", exact_ids, node)
        T.section("tx.submit line forms", submit_line_forms, node)
        rc = node.stop()
        T.eq(rc, 0, "tranched exits 0 on SIGTERM within 10 s")
    except Exception:  # noqa: BLE001
        T.check(False, "fixture", traceback.format_exc() + "\n" + node.logs())
    finally:
        if node.alive():
            T.comment(node.logs())
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
