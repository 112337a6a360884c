#!/usr/bin/python3
"""test_ledger_scenario.py - a realistic life of a bond through the real daemon.

Admin opens an issuer, an agent and investors in several jurisdictions; the
issuer creates an asset with rules, issues, investors trade, the agent
freezes and forces, a coupon is distributed (largest-remainder rule), units
are redeemed, the bond matures.  Then every query, idempotency, the whole
chain recomputed in Python, `tranchectl verify` offline, and a restart.
Prints TAP.
"""
import base64
import hashlib
import json
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)

ASSET = "BOND-A"
LOAN = "LOAN.EU_1"


def allocate(amount, holdings):
    """Section 4 asset.distribute: floor, then largest remainders, ties to the smaller account id."""
    total = sum(holdings.values())
    base = {a: amount * u // total for a, u in holdings.items()}
    rem = {a: amount * u % total for a, u in holdings.items()}
    left = amount - sum(base.values())
    for a in sorted(holdings, key=lambda a: (-rem[a], a))[:left]:
        base[a] += 1
    return base


class Scenario:
    def __init__(self, node):
        self.node = node
        self.admin = node.admin
        self.k = {}
        self.receipts = {}   # name -> (tx bytes, sig, receipt)
        self.last_time = 0

    def key(self, name):
        if name not in self.k:
            self.k[name] = tc.Key()
        return self.k[name]

    def pk(self, name):
        return self.key(name).pk

    def accept(self, name, tx, key, msg):
        """Submit; expect a fresh receipt; remember it."""
        b = tc.tx_bytes(tx)
        sig = tc.sign_tx(b, key)
        size_before = self.node.head()["size"]
        r = self.node.submit(b, key, sig=sig)
        ok = (isinstance(r, dict) and r.get("seq") == size_before + 1 and r.get("duplicate") is False
              and r.get("txid") == hashlib.sha256(b).hexdigest()
              and isinstance(r.get("hash"), str) and re.fullmatch("[0-9a-f]{64}", r["hash"])
              and isinstance(r.get("time"), int) and r["time"] >= self.last_time
              and isinstance(r.get("effects"), dict))
        T.check(ok, msg, r)
        if ok:
            self.last_time = r["time"]
        self.receipts[name] = (b, sig, r)
        return r if isinstance(r, dict) else {}

    def refuse(self, tx, key, reason, msg):
        size_before = self.node.head()["size"]
        r = self.node.submit(tx, key)
        T.check(tc.reason_of(r) == reason and r.get("code") == -32001, msg + " -> " + reason, r)
        T.eq(self.node.head()["size"], size_before, msg + ": journal unchanged")
        return r


def holding(asset, account, units, frozen=0):
    return {"asset": asset, "account": account, "units": units, "frozen": frozen}


def by_acct(items):
    return sorted(items, key=lambda h: (h["asset"], h["account"]))


def run(node, S):
    n, A = node, S.admin
    tx = n.tx
    # ---------------------------------------------------------------- accounts
    S.accept("open_issuer", tx("account.open", A, account=S.pk("issuer"), roles=["issuer"],
                               jurisdiction="US", kyc=True), A, "admin opens the issuer (kyc, US)")
    S.accept("open_agent", tx("account.open", A, account=S.pk("agent"), roles=["agent"],
                              jurisdiction="GB", kyc=True), A, "admin opens a transfer agent")
    for name, j, kyc in (("us", "US", True), ("gb", "GB", True), ("de", "DE", True),
                         ("nokyc", "US", False), ("fr", "FR", True)):
        S.accept("open_" + name, tx("account.open", A, account=S.pk(name), roles=["investor"],
                                    jurisdiction=j, kyc=kyc), A,
                 "admin opens investor %s (%s, kyc %s)" % (name, j, kyc))
    a = n.call("account.get", {"account": S.pk("issuer")})
    T.eq((a.get("account"), a.get("roles"), a.get("jurisdiction"), a.get("kyc"), a.get("frozen"),
          a.get("holdings")),
         (S.pk("issuer"), ["issuer"], "US", True, False, []), "account.get of the new issuer")

    # ---------------------------------------------------------------- asset
    doc = {"name": "prospectus.pdf", "sha256": hashlib.sha256(b"prospectus v1").hexdigest()}
    terms = {"asset": ASSET, "name": "Acme 4.5% 2030 \u00e9mission", "kind": "bond", "currency": "USD",
             "principal": 100000000, "units": 1000000, "coupon_bps": 450, "maturity": "2030-06-30",
             "rating": "A+", "risk_weight_pct": 50,
             "rules": {"jurisdictions": ["US", "GB", "DE"], "max_holders": 10, "min_units": 1000,
                       "lockup_until": 0},
             "documents": [doc]}
    r = S.accept("create", tx("asset.create", S.key("issuer"), **terms), S.key("issuer"),
                 "issuer creates %s with rules" % ASSET)
    g = n.call("asset.get", {"asset": ASSET})
    T.check(all(g.get(f) == v for f, v in terms.items()), "asset.get returns the terms as created",
            {f: (g.get(f), v) for f, v in terms.items() if g.get(f) != v})
    T.eq((g.get("issuer"), g.get("status"), g.get("issued"), g.get("holders")),
         (S.pk("issuer"), "active", 0, 0), "new asset: issuer, active, issued 0, holders 0")

    # ---------------------------------------------------------------- issue
    us, gb, de = S.pk("us"), S.pk("gb"), S.pk("de")
    r = S.accept("issue_us", tx("asset.issue", S.key("issuer"), asset=ASSET, to=us, units=500000),
                 S.key("issuer"), "issue 500000 to us")
    T.eq(r.get("effects", {}).get("holdings"), [holding(ASSET, us, 500000)], "issue effects.holdings")
    T.eq(r.get("effects", {}).get("issued"), 500000, "issue effects.issued")
    S.accept("issue_gb", tx("asset.issue", S.key("issuer"), asset=ASSET, to=gb, units=300000),
             S.key("issuer"), "issue 300000 to gb")
    r = S.accept("issue_de", tx("asset.issue", S.key("issuer"), asset=ASSET, to=de, units=100003),
                 S.key("issuer"), "issue 100003 to de")
    T.eq(r.get("effects", {}).get("issued"), 900003, "issued is 900003")
    S.refuse(tx("asset.issue", S.key("issuer"), asset=ASSET, to=S.pk("nokyc"), units=5000),
             S.key("issuer"), "not_verified", "issue to an investor without kyc")
    S.refuse(tx("asset.issue", S.key("issuer"), asset=ASSET, to=S.pk("fr"), units=5000),
             S.key("issuer"), "jurisdiction", "issue to FR, outside [US, GB, DE]")

    # ---------------------------------------------------------------- trading
    r = S.accept("t1", tx("transfer", S.key("us"), asset=ASSET, to=de, units=123457, memo="trade 1"),
                 S.key("us"), "us sells 123457 to de")
    T.eq(r.get("effects", {}).get("holdings"),
         by_acct([holding(ASSET, us, 376543), holding(ASSET, de, 223460)]),
         "transfer effects: both holdings, sorted by account")
    T.check("issued" not in r.get("effects", {}), "transfer effects do not mention issued",
            r.get("effects"))
    S.accept("t2", tx("transfer", S.key("gb"), asset=ASSET, to=us, units=50000),
             S.key("gb"), "gb sells 50000 to us")
    # ---------------------------------------------------------------- freeze, force
    r = S.accept("freeze", tx("holding.freeze", S.key("agent"), asset=ASSET, account=us, units=400000),
                 S.key("agent"), "agent freezes 400000 of us's 426543")
    T.eq(r.get("effects", {}).get("holdings"), [holding(ASSET, us, 426543, 400000)], "freeze effects")
    S.refuse(tx("transfer", S.key("us"), asset=ASSET, to=gb, units=30000), S.key("us"),
             "insufficient_units", "us moves 30000 with only 26543 available")
    S.accept("t3", tx("transfer", S.key("us"), asset=ASSET, to=gb, units=26543),
             S.key("us"), "us moves exactly its 26543 available units")
    r = S.accept("force", tx("transfer.force", S.key("agent"), asset=ASSET, **{"from": us}, to=de,
                             units=150000, reason="court order 2026-17"),
                 S.key("agent"), "agent forces 150000 from us (frozen) to de")
    T.eq(r.get("effects", {}).get("holdings"),
         by_acct([holding(ASSET, us, 250000, 250000), holding(ASSET, de, 373460)]),
         "force effects: sender frozen becomes min(frozen, held after)")
    hold = {us: 250000, gb: 276543, de: 373460}
    h = n.call("asset.holders", {"asset": ASSET})
    T.eq(h.get("holders"), [{"account": a, "units": u, "frozen": 250000 if a == us else 0}
                            for a, u in sorted(hold.items())], "asset.holders after trading")

    # ---------------------------------------------------------------- coupon
    amount = 1234567
    r = S.accept("coupon", tx("asset.distribute", S.key("issuer"), asset=ASSET, amount=amount,
                              kind="interest", memo="coupon 2026-H2"),
                 S.key("issuer"), "issuer distributes a coupon of 1234567")
    dseq = r.get("seq")
    T.eq(r.get("effects", {}).get("distribution"), {"seq": dseq, "count": 3, "amount": amount},
         "distribution effects {seq, count, amount}")
    want = allocate(amount, hold)
    T.eq(sum(want.values()), amount, "(model) allocations sum to the amount")
    p = n.call("asset.payouts", {"asset": ASSET})
    got = p.get("payouts")
    T.eq(got, [{"distribution": dseq, "account": a, "amount": want[a]} for a in sorted(want)],
         "asset.payouts: pro rata with largest remainders")
    T.eq(sum(x["amount"] for x in got or []), amount, "payouts sum exactly to the amount")

    # ---------------------------------------------------------------- redemption, maturity
    r = S.accept("redeem", tx("asset.redeem", S.key("issuer"), asset=ASSET, **{"from": gb}, units=76543,
                              amount=7654300), S.key("issuer"), "issuer redeems 76543 units of gb")
    T.eq(r.get("effects", {}).get("holdings"), [holding(ASSET, gb, 200000)], "redeem effects.holdings")
    T.eq(r.get("effects", {}).get("issued"), 823460, "redeem lowers issued")
    hold[gb] = 200000
    r = S.accept("mature", tx("asset.status", S.key("issuer"), asset=ASSET, status="matured"),
                 S.key("issuer"), "issuer sets the bond matured")
    T.eq(r.get("effects", {}).get("status"), "matured", "status effects")
    S.refuse(tx("transfer", S.key("de"), asset=ASSET, to=gb, units=1000), S.key("de"),
             "asset_not_active", "transfer of a matured bond")
    # a principal distribution of a tiny amount: ties and zero allocations
    r = S.accept("principal", tx("asset.distribute", S.key("issuer"), asset=ASSET, amount=2,
                                 kind="principal"), S.key("issuer"), "distribution of 2 minor units")
    d2 = r.get("seq")
    want2 = allocate(2, hold)
    p = n.call("asset.payouts", {"asset": ASSET, "distribution": d2})
    T.eq(p.get("payouts"), [{"distribution": d2, "account": a, "amount": want2[a]} for a in sorted(want2)],
         "second distribution: zero allocations recorded too")
    allp, cur = [], None
    for _ in range(10):
        pg = n.call("asset.payouts", {"asset": ASSET, "cursor": cur, "limit": 2})
        allp += pg["payouts"]
        cur = pg.get("next")
        if cur is None:
            break
    T.eq([(x["distribution"], x["account"]) for x in allp],
         [(dseq, a) for a in sorted(want)] + [(d2, a) for a in sorted(want2)],
         "asset.payouts paginated in (distribution, account) order")

    # ---------------------------------------------------------------- ties go to the smaller account id
    S.accept("create_tie", tx("asset.create", S.key("issuer"), asset="TIE", name="ties", kind="receivable",
                              currency="USD", principal=3, units=3, coupon_bps=0, maturity="2027-01-31",
                              rating="C", risk_weight_pct=150, rules={}), S.key("issuer"), "issuer creates TIE")
    for who in ("us", "gb", "de"):
        S.accept("tie_" + who, tx("asset.issue", S.key("issuer"), asset="TIE", to=S.pk(who), units=1),
                 S.key("issuer"), "issue 1 TIE to " + who)
    three = sorted([us, gb, de])
    for amt, want_t in ((2, [1, 1, 0]), (1, [1, 0, 0]), (5, [2, 2, 1])):
        r = S.accept("tie_d%d" % amt, tx("asset.distribute", S.key("issuer"), asset="TIE", amount=amt,
                                         kind="other"), S.key("issuer"), "distribute %d over 3 equal holders" % amt)
        p = n.call("asset.payouts", {"asset": "TIE", "distribution": r.get("seq")})
        T.eq([(x["account"], x["amount"]) for x in p.get("payouts", [])], list(zip(three, want_t)),
             "equal remainders: the extra units go to the smaller account ids (amount %d)" % amt)

    # ---------------------------------------------------------------- a second asset: big numbers
    S.accept("create_loan", tx("asset.create", S.key("issuer"), asset=LOAN, name="EU term loan",
                               kind="term_loan", currency="EUR", principal=9007199254740991, units=3,
                               coupon_bps=0, maturity="2028-02-29", rating="BBB", risk_weight_pct=1250,
                               rules={}), S.key("issuer"), "issuer creates a loan with principal 2^53-1")
    S.accept("issue_loan", tx("asset.issue", S.key("issuer"), asset=LOAN, to=de, units=1),
             S.key("issuer"), "issue 1 of 3 loan units to de")
    c = n.conn
    c.call("asset.get", {"asset": LOAN})
    T.check('"principal":9007199254740991' in c.last_raw.decode(), "2^53-1 printed as plain digits",
            c.last_raw[:300])

    # ---------------------------------------------------------------- queries
    size = n.head()["size"]
    a = n.call("account.get", {"account": us})
    T.eq((a.get("roles"), a.get("jurisdiction"), a.get("kyc"), a.get("frozen"), a.get("holdings"),
          a.get("size")),
         (["investor"], "US", True, False, [{"asset": ASSET, "units": 250000, "frozen": 250000},
                                            {"asset": "TIE", "units": 1, "frozen": 0}], size),
         "account.get of us")
    a = n.call("account.get", {"account": de})
    T.eq(a.get("holdings"), sorted([{"asset": ASSET, "units": 373460, "frozen": 0},
                                    {"asset": LOAN, "units": 1, "frozen": 0},
                                    {"asset": "TIE", "units": 1, "frozen": 0}], key=lambda x: x["asset"]),
         "account.get of de lists every holding, by asset")
    g = n.call("asset.get", {"asset": ASSET})
    T.eq((g.get("status"), g.get("issued"), g.get("holders"), g.get("issuer"), g.get("size")),
         ("matured", 823460, 3, S.pk("issuer"), size), "asset.get after the life cycle")
    lst = n.call("asset.list", {})
    T.eq([x.get("asset") for x in lst.get("assets", [])], sorted([ASSET, LOAN, "TIE"]), "asset.list by asset id")
    hs, cur = [], None
    for _ in range(10):
        pg = n.call("asset.holders", {"asset": ASSET, "cursor": cur, "limit": 2})
        T.check(len(pg["holders"]) <= 2 and pg.get("size") == size, "asset.holders page within limit, with size")
        hs += pg["holders"]
        cur = pg.get("next")
        if cur is None:
            break
    T.eq([(x["account"], x["units"]) for x in hs], sorted(hold.items()), "asset.holders paginated by account")

    rx = n.call("risk.exposure", {"account": de})
    e_bond = 100000000 * 373460 // 1000000
    e_loan = 9007199254740991 * 1 // 3
    want_h = sorted([
        {"asset": ASSET, "currency": "USD", "units": 373460, "exposure": str(e_bond),
         "risk_weight_pct": 50, "rwa": str(e_bond * 50 // 100)},
        {"asset": LOAN, "currency": "EUR", "units": 1, "exposure": str(e_loan),
         "risk_weight_pct": 1250, "rwa": str(e_loan * 1250 // 100)},
        {"asset": "TIE", "currency": "USD", "units": 1, "exposure": "1", "risk_weight_pct": 150, "rwa": "1"}],
        key=lambda x: x["asset"])
    T.eq(rx.get("holdings"), want_h, "risk.exposure holdings (decimal strings, 128-bit safe)")
    T.eq(sorted(rx.get("totals", []), key=lambda x: x["currency"]),
         [{"currency": "EUR", "exposure": str(e_loan), "rwa": str(e_loan * 1250 // 100)},
          {"currency": "USD", "exposure": str(e_bond + 1), "rwa": str(e_bond * 50 // 100 + 1)}],
         "risk.exposure totals per currency (sums of the holdings' values)")
    T.eq((rx.get("account"), rx.get("size")), (de, size), "risk.exposure account and size")

    # account.history of gb
    hist, cur = [], None
    for _ in range(50):
        pg = n.call("account.history", {"account": gb, "cursor": cur, "limit": 2})
        hist += pg["entries"]
        cur = pg.get("next")
        if cur is None:
            break
    seqs = [e.get("seq") for e in hist]
    rs = {k: v[2].get("seq") for k, v in S.receipts.items() if isinstance(v[2], dict)}
    must = {rs["issue_gb"], rs["t2"], rs["t3"], rs["redeem"], rs["tie_gb"]}
    never = {rs["open_de"], rs["t1"], rs["freeze"], rs["force"], rs["issue_us"], rs["create_loan"],
             rs["tie_us"], rs["issue_loan"]}
    T.check(seqs == sorted(set(seqs)), "account.history ascending without repeats", seqs)
    T.check(must <= set(seqs), "account.history has the entries gb signed or whose units moved",
            (sorted(must), seqs))
    T.check(not (never & set(seqs)), "account.history omits entries not touching gb",
            sorted(never & set(seqs)))

    # tx.get / tx.find
    b, sig, rc = S.receipts["t1"]
    t = n.call("tx.get", {"txid": rc["txid"]})
    T.eq((t.get("seq"), t.get("txid"), t.get("hash"), t.get("time"), t.get("tx"), t.get("sig"), t.get("signer")),
         (rc["seq"], rc["txid"], rc["hash"], rc["time"], b.decode(), sig, us), "tx.get returns the stored tx")
    t2 = n.call("tx.find", {"signer": us, "id": json.loads(b)["id"]})
    T.eq(t2, t, "tx.find by (signer, id) returns the same")

    # ---------------------------------------------------------------- idempotency
    size = n.head()["size"]
    r = n.submit(b, None, sig=sig)
    T.check(isinstance(r, dict) and r.get("duplicate") is True and r.get("seq") == rc["seq"]
            and r.get("txid") == rc["txid"] and r.get("hash") == rc["hash"] and r.get("time") == rc["time"],
            "resubmitting an accepted tx: duplicate true, same seq/txid/hash/time (state changed since)", r)
    ck = n.check_tx(b, sig=sig)
    T.check(isinstance(ck, dict) and ck.get("ok") is True and ck.get("duplicate") is True
            and ck.get("seq") == rc["seq"], "tx.check of an accepted tx: ok, duplicate, its seq", ck)
    t1 = json.loads(b)
    t1["memo"] = "trade 1 (amended)"
    r = n.submit(t1, S.key("us"))
    T.eq(tc.reason_of(r), "id_conflict", "same (signer, id), other bytes -> id_conflict")
    T.eq(n.head()["size"], size, "duplicate and id_conflict append nothing")
    # a valid dry run appends nothing
    dry = tx("transfer", S.key("fr"), asset=ASSET, to=us, units=1)
    ck = n.check_tx(dry, S.key("fr"))
    T.check(isinstance(ck, dict) and ck.get("ok") is False and ck.get("seq") is None
            and ck.get("duplicate") is False and isinstance(ck.get("reasons"), list) and ck["reasons"],
            "tx.check of a tx that would fail: ok false, reasons listed", ck)
    dry = tx("account.update", A, account=S.pk("fr"), kyc=False)
    ck = n.check_tx(dry, A)
    T.check(isinstance(ck, dict) and ck.get("ok") is True and ck.get("reasons") == [] and ck.get("seq") is None
            and ck.get("duplicate") is False, "tx.check of a valid tx: ok, no reasons, seq null", ck)
    T.eq(n.head()["size"], size, "tx.check appends nothing")

    # ---------------------------------------------------------------- concurrency
    with n.connect() as c1, n.connect() as c2:
        sent = []
        for i in range(40):
            k = tc.Key()
            t = tc.tx_bytes(tx("account.open", A, account=k.pk, roles=["investor"], jurisdiction="DE", kyc=True))
            conn = c1 if i % 2 else c2
            req = conn.request("tx.submit", {"tx": t.decode(), "sig": tc.sign_tx(t, A)})
            conn.send_obj(req)
            sent.append((conn, req["id"]))
        out = []
        for conn, rid in sent:
            resp = conn.recv(timeout=60)
            out.append(resp.get("result", {}).get("seq") if resp.get("id") == rid else None)
    T.check(None not in out and sorted(out) == list(range(size + 1, size + 41)),
            "40 pipelined submits on 2 connections: all accepted, contiguous seqs", out)
    # the same tx racing on two connections: one entry, the other gets the stored receipt
    size = n.head()["size"]
    with n.connect() as c1, n.connect() as c2:
        pairs = []
        for i in range(10):
            t = tc.tx_bytes(tx("account.open", A, account=tc.Key().pk, roles=["investor"], jurisdiction="GB",
                               kyc=True))
            p = {"tx": t.decode(), "sig": tc.sign_tx(t, A)}
            r1, r2 = c1.request("tx.submit", p), c2.request("tx.submit", p)
            c1.send_obj(r1)
            c2.send_obj(r2)
            pairs.append((r1["id"], r2["id"]))
        bad = []
        for id1, id2 in pairs:
            x, y = c1.recv(timeout=60), c2.recv(timeout=60)
            x, y = x.get("result", x), y.get("result", y)
            if not (x.get("seq") == y.get("seq") and x.get("hash") == y.get("hash")
                    and sorted([x.get("duplicate"), y.get("duplicate")]) == [False, True]):
                bad.append((x, y))
    T.check(not bad, "a tx submitted twice at once: one entry, one duplicate receipt with the same seq", bad[:2])
    T.eq(n.head()["size"], size + 10, "10 racing pairs appended 10 entries")

    # ---------------------------------------------------------------- lost keys
    gb_held = n.call("account.get", {"account": gb})["holdings"]
    gb2 = tc.Key()
    r = S.accept("recover_gb", tx("account.recover", S.key("agent"), account=gb, to=gb2.pk,
                                  reason="lost device, ticket 4711"), S.key("agent"), "agent recovers gb's lost key")
    a2 = n.call("account.get", {"account": gb2.pk})
    T.eq((a2.get("roles"), a2.get("jurisdiction"), a2.get("kyc"), a2.get("frozen"), a2.get("holdings")),
         (["investor"], "GB", True, False, gb_held), "the new key has gb's roles, jurisdiction, kyc, holdings")
    a1 = n.call("account.get", {"account": gb})
    T.eq((a1.get("roles"), a1.get("frozen"), a1.get("holdings")), ([], True, []),
         "the old key is frozen, without roles or holdings")
    iss2 = tc.Key()
    S.accept("recover_issuer", tx("account.recover", A, account=S.pk("issuer"), to=iss2.pk, reason="key rotation"),
             A, "admin recovers the issuer's key")
    T.eq(n.call("asset.get", {"asset": ASSET}).get("issuer"), iss2.pk, "the asset now names the new issuer key")
    r = n.submit(tx("asset.status", S.key("issuer"), asset=ASSET, status="defaulted"), S.key("issuer"))
    T.eq(tc.reason_of(r), "frozen", "the old issuer key is refused (frozen)")
    S.accept("new_issuer_acts", tx("asset.status", iss2, asset=ASSET, status="defaulted"), iss2,
             "the new issuer key manages the asset")


def chain_and_restart(node, S):
    n = node
    entries = n.all_entries(page=7)
    head = n.head()
    T.eq(len(entries), head["size"], "ledger.entries returns every entry")
    ok, msg, leaves = tc.check_chain(entries)
    T.check(ok, "every entry hash, prev link, txid and signature recomputed: " + msg, msg)
    T.eq(head.get("hash"), leaves[-1].hex() if leaves else None, "ledger.head hash = last entry hash")
    T.eq(head.get("root"), tc.merkle_root(leaves).hex(), "ledger.head root = recomputed Merkle root")
    gen = json.loads(entries[0]["tx"])
    node_pk = bytes.fromhex(gen["signer"])
    # latest checkpoint, kept for an audit that does not trust the directory
    deadline = time.monotonic() + 5
    while True:
        cp = n.call("ledger.checkpoint")
        if cp.get("size") == head["size"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    T.eq(cp.get("size"), head["size"], "checkpoint catches up with the journal")
    try:
        size, root = tc.parse_checkpoint(cp["checkpoint"], n.chain, node_pk)
        T.check(root == tc.merkle_root(leaves[:size]), "checkpoint root = recomputed root of its size")
    except Exception as ex:  # noqa: BLE001
        T.check(False, "checkpoint verifies", "%s %r" % (ex, cp))
    cp_file = os.path.join(n.tmp, "checkpoint.txt")
    with open(cp_file, "w", encoding="utf-8", newline="") as f:
        f.write(cp.get("checkpoint", ""))

    rc = n.stop()
    T.eq(rc, 0, "tranched exits 0 on SIGTERM")
    v = n.ctl("verify", "--datadir", n.datadir)
    T.check(v.returncode == 0, "tranchectl verify exits 0 on the sound journal",
            v.stdout.decode("utf-8", "replace") + v.stderr.decode("utf-8", "replace"))
    v = n.ctl("verify", "--datadir", n.datadir, "--checkpoint", cp_file, "--vkey", cp.get("vkey", ""))
    T.check(v.returncode == 0, "tranchectl verify against the saved checkpoint and vkey exits 0",
            v.stdout.decode("utf-8", "replace") + v.stderr.decode("utf-8", "replace"))

    # the audit must fail against checkpoints that do not match
    body, _, sigs = cp.get("checkpoint", "").partition("\n\n")
    lines = body.split("\n")
    bad_cps = []
    if len(lines) == 3:
        bad_cps.append(("a checkpoint whose size line was altered",
                        "%s\n%d\n%s\n\n%s" % (lines[0], int(lines[1]) - 1, lines[2], sigs), cp.get("vkey", "")))
        other = tc.Key()
        ovkey, okid = tc.vkey_of(n.chain, other.pk_bytes)
        b2 = body + "\n"
        bad_cps.append(("a checkpoint signed only by a key other than the given vkey",
                        b2 + "\n\u2014 %s %s\n" % (n.chain, base64.b64encode(okid + other.sign(b2.encode())).decode()),
                        cp.get("vkey", "")))
        nk = os.path.join(n.datadir, "node.key")
        if os.path.exists(nk):
            node_key = tc.Key.load(nk)
            wrong = "%s\n%s\n%s\n" % (lines[0], lines[1], base64.b64encode(b"\x07" * 32).decode())
            _, kid = tc.vkey_of(n.chain, node_key.pk_bytes)
            bad_cps.append(("a checkpoint signed by the node key with a wrong root",
                            wrong + "\n\u2014 %s %s\n" % (n.chain, base64.b64encode(
                                kid + node_key.sign(wrong.encode())).decode()), cp.get("vkey", "")))
    for i, (what, text, vk) in enumerate(bad_cps):
        pth = os.path.join(n.tmp, "bad%d.txt" % i)
        with open(pth, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        v = n.ctl("verify", "--datadir", n.datadir, "--checkpoint", pth, "--vkey", vk)
        T.eq(v.returncode, 1, "tranchectl verify exits 1 against " + what)

    n.start()
    head2 = n.head()
    T.eq((head2.get("size"), head2.get("hash"), head2.get("root")), (head["size"], head["hash"], head["root"]),
         "after restart the head is unchanged")
    b, sig, rc1 = S.receipts["t2"]
    r = n.submit(b, None, sig=sig)
    T.check(isinstance(r, dict) and r.get("duplicate") is True and r.get("seq") == rc1["seq"]
            and r.get("hash") == rc1["hash"], "duplicate detected across a restart", r)
    t = json.loads(b)
    t["units"] = 1
    r = n.submit(t, S.key("gb"))
    T.eq(tc.reason_of(r), "id_conflict", "id_conflict across a restart")
    r = S.accept("after_restart", n.tx("account.update", S.admin, account=S.pk("nokyc"), kyc=True),
                 S.admin, "a new tx after restart is accepted")
    e = n.call("ledger.entry", {"seq": r.get("seq", 0)}) if r.get("seq") else {}
    T.eq(e.get("prev"), head["hash"], "the new entry links to the last entry before the restart")
    T.check(e.get("time", 0) >= entries[-1]["time"], "entry time never goes back across a restart")
    rc = n.stop()
    T.eq(rc, 0, "tranched exits 0 on the second SIGTERM")
    v = n.ctl("verify", "--datadir", n.datadir)
    T.check(v.returncode == 0, "tranchectl verify exits 0 after the restart",
            v.stdout.decode("utf-8", "replace") + v.stderr.decode("utf-8", "replace"))


def main():
    node = tc.Node()
    try:
        node.init()
        node.start()
        S = Scenario(node)
        T.section("scenario", run, node, S)
        if node.alive():
            T.section("chain and restart", chain_and_restart, node, S)
        else:
            T.check(False, "daemon alive after the scenario", node.logs())
    except Exception:  # noqa: BLE001
        T.check(False, "fixture", traceback.format_exc() + "\n" + node.logs())
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
