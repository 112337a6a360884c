#!/usr/bin/python3
"""test_refusals.py - every refusal reason of PROTOCOL.md section 6 through the daemon,
the order of checks of section 4, tx.check's list of step-8 reasons, boundaries,
and that a refused tx changes nothing.  Prints TAP.
"""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trclient as tc  # noqa: E402

T = tc.Tap()
tc.binaries_or_skip(T)

FAR = 4102444800000      # 2100-01-01: a lockup that will not pass during the test
L = 2 ** 252 + 27742317777372353535851937790883648493   # Ed25519 group order
SEEN = set()


class R:
    def __init__(self, node):
        self.n = node
        self.A = node.admin
        self.k = {}

    def key(self, name):
        if name not in self.k:
            self.k[name] = tc.Key()
        return self.k[name]

    def pk(self, name):
        return self.key(name).pk

    def tx(self, type_, signer, **f):
        return self.n.tx(type_, self.key(signer) if isinstance(signer, str) else signer, **f)

    def ok(self, tx, key, msg):
        key = self.key(key) if isinstance(key, str) else key
        size = self.n.head()["size"]
        r = self.n.submit(tx, key)
        T.check(isinstance(r, dict) and r.get("seq") == size + 1 and r.get("duplicate") is False, msg, r)
        return r

    def no(self, tx, key, reason, msg, sig=None):
        key = self.key(key) if isinstance(key, str) else key
        size = self.n.head()["size"]
        r = self.n.submit(tx, key, sig=sig)
        good = (tc.reason_of(r) == reason and r.get("code") == -32001
                and isinstance(r["data"].get("detail"), str))
        T.check(good, "%s -> %s" % (msg, reason), r)
        T.eq(self.n.head()["size"], size, "%s: journal unchanged" % msg)
        SEEN.add(tc.reason_of(r) if good else None)
        return r


def setup(S):
    A = S.A
    for name, roles, j, kyc in (("issuer", ["issuer"], "US", True), ("issuer2", ["issuer"], "US", False),
                                ("issuer3", ["issuer", "investor"], "GB", True),
                                ("agent", ["agent"], "GB", True),
                                ("a", ["investor"], "US", True), ("b", ["investor"], "GB", True),
                                ("c", ["investor"], "US", True), ("d", ["investor"], "US", True),
                                ("nokyc", ["investor"], "US", False), ("fr", ["investor"], "FR", True),
                                ("ice", ["investor"], "US", True), ("bad", ["investor"], "FR", False)):
        S.ok(S.tx("account.open", A, account=S.pk(name), roles=roles, jurisdiction=j, kyc=kyc), A,
             "open %s" % name)

    def create(asset, units, rules, **extra):
        terms = dict(asset=asset, name="asset " + asset, kind="other", currency="USD", principal=1000000,
                     units=units, coupon_bps=0, maturity="2031-12-31", rating="B", risk_weight_pct=100,
                     rules=rules)
        terms.update(extra)
        S.ok(S.tx("asset.create", "issuer", **terms), "issuer", "create " + asset)
    create("R1", 10000, {"jurisdictions": ["US", "GB"], "max_holders": 2, "min_units": 100, "lockup_until": 0})
    create("LOCK", 1000, {"lockup_until": FAR})
    create("PAST", 1000, {"lockup_until": 1})
    create("M", 10000, {"jurisdictions": ["US"], "max_holders": 1, "min_units": 100, "lockup_until": FAR})
    create("Z", 1000, {})
    create("E", 1000, {})
    for asset, to, u in (("LOCK", "a", 500), ("PAST", "a", 500), ("Z", "a", 600), ("M", "a", 1000),
                         ("Z", "ice", 100)):
        S.ok(S.tx("asset.issue", "issuer", asset=asset, to=S.pk(to), units=u), "issuer",
             "issue %d %s to %s" % (u, asset, to))
    S.ok(S.tx("account.update", A, account=S.pk("ice"), frozen=True), A, "admin freezes account ice")
    S.ok(S.tx("account.update", A, account=S.pk("bad"), frozen=True), A, "admin freezes account bad")


# ------------------------------------------------------------------ step 1: invalid

def envelope(S):
    a, b = S.pk("a"), S.pk("b")
    base = S.tx("transfer", "a", asset="Z", to=b, units=1)
    bb = tc.tx_bytes(base)

    def raw(text, what):
        S.no(text, "a", "invalid", "envelope: " + what)

    def variant(what, **changes):
        t = dict(base)
        for k, v in changes.items():
            if v is KeyError:
                t.pop(k, None)
            else:
                t[k] = v
        S.no(t, "a", "invalid", "envelope: " + what)

    variant("unknown field", foo=1)
    variant("missing field units", units=KeyError)
    variant("missing field id", id=KeyError)
    variant("units 0", units=0)
    variant("units -1", units=-1)
    variant("units as a string", units="5")
    variant("units 2^53", units=9007199254740992)
    variant("units true", units=True)
    variant("memo null (optional fields are absent, never null)", memo=None)
    variant("expires null", expires=None)
    variant("expires as a string", expires="99999999999999")
    variant("memo of 201 chars", memo="x" * 201)
    variant("memo with escaped NUL", memo="a\u0000b")
    variant("to = signer", to=a)
    variant("asset id lower case", asset="z")
    variant("asset id of 33 chars", asset="A" * 33)
    variant("id with a space", id="has space")
    variant("id of 65 chars", id="i" * 65)
    variant("empty id", id="")
    variant("signer in upper-case hex", signer=a.upper())
    variant("to in upper-case hex", to=b.upper())
    variant("to of 63 hex chars", to=b[:63])
    variant("to is the identity point (small order)", to="01" + "00" * 31)
    variant("to is the all-zero point (small order)", to="00" * 32)
    variant("unknown type", type="transfer.all")
    variant("type missing", type=KeyError)
    variant("chain id with upper case", chain="Test.example/it")
    raw(bb[:-1] + b',"units":2}', "duplicate member name")
    raw(bb.replace(b'"units":1', b'"units":1e0'), "units 1e0")
    raw(bb.replace(b'"units":1', b'"units":1.0'), "units 1.0")
    raw(bb.replace(b'"units":1', b'"units":01'), "units 01")
    raw(bb.replace(b'"units":1', b'"units":-0'), "units -0")
    raw(b"\xef\xbb\xbf" + bb, "byte-order mark")
    raw(bb + b"x", "bytes after the object")
    raw(bb + b"{}", "a second object")
    raw(bb.replace(b",", b",\x0c", 1), "form feed as whitespace")
    raw(b"[" + bb + b"]", "an array, not an object")
    raw(bb[:-1], "truncated object")
    raw(bb.replace(b'"units":1', b'"units":1,"memo":"a\\ud800"'), "memo with a lone surrogate escape")
    # size: exactly 16 KiB is allowed, one byte more is not
    pad = 16384 - len(bb)
    t16 = bb[:1] + b" " * pad + bb[1:]
    assert len(t16) == 16384
    S.no(t16[:1] + b" " + t16[1:], "a", "invalid", "envelope: tx of 16 KiB + 1 byte")
    S.ok(t16, "a", "tx of exactly 16 KiB (whitespace padded) accepted")
    # per type
    A = S.A
    S.no(S.tx("account.open", A, account=tc.Key().pk, roles=["investor", "investor"], jurisdiction="US",
              kyc=True), A, "invalid", "envelope: duplicate role")
    S.no(S.tx("account.open", A, account=tc.Key().pk, roles=["trader"], jurisdiction="US", kyc=True), A,
         "invalid", "envelope: unknown role")
    S.no(S.tx("account.open", A, account=tc.Key().pk, roles=["investor"], jurisdiction="us", kyc=True), A,
         "invalid", "envelope: jurisdiction lower case")
    S.no(S.tx("account.open", A, account=tc.Key().pk, roles=["investor"], jurisdiction="US", kyc="true"), A,
         "invalid", "envelope: kyc as a string")
    S.no(S.tx("account.open", A, account=tc.Key().pk, roles=["investor"], jurisdiction="US"), A,
         "invalid", "envelope: account.open without kyc")
    S.no(S.tx("account.update", A, account=S.pk("a")), A, "invalid", "envelope: account.update changing nothing")
    S.no(S.tx("transfer.force", "agent", asset="Z", **{"from": a}, to=a, units=1, reason="x"), "agent",
         "invalid", "envelope: force with from = to")
    S.no(S.tx("account.recover", "agent", account=a, to=tc.Key().pk, reason=""), "agent", "invalid",
         "envelope: recover with an empty reason")
    terms = dict(asset="NEW", name="n", kind="bond", currency="USD", principal=1, units=1, coupon_bps=0,
                 maturity="2030-01-01", rating="A", risk_weight_pct=0, rules={})
    for what, ch in (("maturity 2030-02-30", {"maturity": "2030-02-30"}),
                     ("maturity 2031-02-29 (not a leap year)", {"maturity": "2031-02-29"}),
                     ("maturity 2030-1-01", {"maturity": "2030-1-01"}),
                     ("coupon_bps 100001", {"coupon_bps": 100001}),
                     ("risk_weight_pct 1251", {"risk_weight_pct": 1251}),
                     ("rating empty", {"rating": ""}),
                     ("rating of 9 chars", {"rating": "AAAAAAAAA"}),
                     ("unknown kind", {"kind": "swap"}),
                     ("currency lower case", {"currency": "usd"}),
                     ("name empty", {"name": ""}),
                     ("principal 0", {"principal": 0}),
                     ("max_holders 10001", {"rules": {"max_holders": 10001}}),
                     ("unknown field inside rules", {"rules": {"min_units": 1, "bogus": 1}}),
                     ("jurisdiction in rules lower case", {"rules": {"jurisdictions": ["us"]}}),
                     ("rules null", {"rules": None}),
                     ("documents null", {"documents": None}),
                     ("33 documents", {"documents": [{"name": "d%d" % i, "sha256": "ab" * 32}
                                                     for i in range(33)]}),
                     ("document sha256 upper case", {"documents": [{"name": "d", "sha256": "AB" * 32}]}),
                     ("unknown field inside a document", {"documents": [{"name": "d", "sha256": "ab" * 32,
                                                                         "url": "x"}]})):
        t = dict(terms)
        t.update(ch)
        S.no(S.tx("asset.create", "issuer", **t), "issuer", "invalid", "envelope: asset.create " + what)
    t = dict(terms, maturity="2032-02-29", name="\u00e9" * 200, coupon_bps=100000, risk_weight_pct=1250,
             rating="AAAAAAAA", rules={"max_holders": 10000, "min_units": 0, "lockup_until": 0,
                                       "jurisdictions": []},
             documents=[{"name": "d%d" % i, "sha256": "ab" * 32} for i in range(32)])
    S.ok(S.tx("asset.create", "issuer", **t), "issuer",
         "asset.create at every upper bound (200 two-byte chars, 32 documents, 2032-02-29)")
    # genesis cannot be submitted
    g = S.n.call("ledger.entry", {"seq": 1})
    r = S.n.submit(g["tx"], None, sig=g["sig"])
    T.eq(tc.reason_of(r), "invalid", "tx.submit of the genesis -> invalid")
    S.no(S.tx("genesis", A, admin=tc.Key().pk), A, "invalid", "envelope: a new genesis signed by the admin")
    # the same tx, well formed, is accepted with its memo of 200 multibyte chars
    S.ok(S.tx("transfer", "a", asset="Z", to=b, units=1, memo="\u20ac" * 200), "a",
         "memo of 200 three-byte chars accepted")


# ------------------------------------------------------------------ steps 2-7 and their order

def early_steps(S):
    A, a, b = S.A, S.pk("a"), S.pk("b")
    stranger = tc.Key()
    other = tc.Key()

    def t(**f):
        f.setdefault("units", 1)
        return S.tx("transfer", "a", asset="Z", to=b, **f)
    # wrong_chain
    S.no(tc.make_tx("transfer", S.key("a"), chain="other.example/x", asset="Z", to=b, units=1), "a",
         "wrong_chain", "tx for another chain")
    x = tc.make_tx("transfer", S.key("a"), chain="other.example/x", asset="Z", to=b, units=1, foo=1)
    S.no(x, "a", "invalid", "invalid beats wrong_chain")
    x = tc.make_tx("transfer", S.key("a"), chain="other.example/x", asset="Z", to=b, units=1)
    S.no(x, other, "wrong_chain", "wrong_chain beats bad_signature")
    # bad_signature
    S.no(t(), other, "bad_signature", "signed by another key")
    x = t()
    S.no(x, "a", "bad_signature", "signature of other bytes", sig=tc.sign_tx(t(), S.key("a")))
    S.no(t(), "a", "bad_signature", "all-zero signature", sig="00" * 64)
    x = t()
    good = bytes.fromhex(tc.sign_tx(x, S.key("a")))
    s = int.from_bytes(good[32:], "little") + L
    S.no(x, "a", "bad_signature", "signature with S + L (non-canonical S)",
         sig=(good[:32] + s.to_bytes(32, "little")).hex())
    S.no(t(expires=1), other, "bad_signature", "bad_signature beats expired")
    # malformed sig strings: -32602, invalid or bad_signature are all sensible; we accept each
    size0 = S.n.head()["size"]
    for what, sig in (("upper-case hex", tc.sign_tx(t(), S.key("a")).upper()), ("63 bytes", "ab" * 63)):
        r = S.n.submit(t(), S.key("a"), sig=sig)
        T.check(tc.reason_of(r) in ("invalid", "bad_signature") or (tc.is_error(r) and r.get("code") == -32602),
                "sig in %s -> invalid, bad_signature or -32602" % what, r)
        T.eq(S.n.head()["size"], size0, "sig in %s: journal unchanged" % what)
    # expired and id_conflict
    S.no(t(expires=1), "a", "expired", "expires in the past")
    now_ms = S.n.head()["time"]
    S.no(t(expires=now_ms - 1), "a", "expired", "expires just before the last entry time")
    S.ok(t(expires=FAR), "a", "expires far in the future accepted")
    first = t(id="conflict-1")
    S.ok(first, "a", "first tx with id conflict-1")
    S.no(t(id="conflict-1", memo="other"), "a", "id_conflict", "same (signer, id), other bytes")
    S.no(t(id="conflict-1", expires=1), "a", "id_conflict", "id_conflict beats expired")
    S.no(t(id="conflict-1", units=2), "a", "id_conflict", "same (signer, id), other units")
    r = S.ok(S.tx("account.open", A, id="conflict-1", account=tc.Key().pk, roles=["investor"],
                  jurisdiction="US", kyc=True), A, "the same id under another signer is free")
    # refused txs reserve nothing
    S.no(t(id="reuse-1", units=999999), "a", "insufficient_units", "refused tx with id reuse-1")
    S.ok(t(id="reuse-1"), "a", "id reuse-1 still free after its refusal")
    # not_found signer, and expired beats it
    S.no(tc.make_tx("transfer", stranger, asset="Z", to=b, units=1, expires=1), stranger, "expired",
         "expired beats an unknown signer")
    S.no(tc.make_tx("transfer", stranger, asset="Z", to=b, units=1), stranger, "not_found",
         "signer is not an account")
    node_pk = json.loads(S.n.call("ledger.entry", {"seq": 1})["tx"])["signer"]
    S.no(S.tx("account.open", A, account=node_pk, roles=["investor"], jurisdiction="US", kyc=True), A,
         "exists", "the node key can never become an account")
    # frozen signer, and frozen beats unauthorized
    S.no(S.tx("transfer", "ice", asset="Z", to=a, units=100), "ice", "frozen", "frozen signer")
    S.no(S.tx("account.open", "ice", account=tc.Key().pk, roles=["investor"], jurisdiction="US", kyc=True),
         "ice", "frozen", "frozen beats unauthorized")
    # unauthorized / not_found asset / ownership / not_verified / named accounts
    S.no(S.tx("account.open", "a", account=tc.Key().pk, roles=["investor"], jurisdiction="US", kyc=True),
         "a", "unauthorized", "investor opens an account")
    S.no(S.tx("holding.freeze", "a", asset="Z", account=a, units=1), "a", "unauthorized",
         "investor freezes a holding")
    S.no(S.tx("asset.issue", "a", asset="NOPE", to=a, units=1), "a", "unauthorized",
         "unauthorized (no issuer role) beats an unknown asset")
    S.no(S.tx("asset.issue", "issuer", asset="NOPE", to=a, units=1), "issuer", "not_found", "unknown asset")
    S.no(S.tx("transfer", "a", asset="NOPE", to=b, units=1), "a", "not_found", "transfer of an unknown asset")
    S.no(S.tx("asset.issue", "issuer2", asset="Z", to=a, units=1), "issuer2", "unauthorized",
         "issuer of another asset (and without kyc): unauthorized beats not_verified")
    S.no(S.tx("asset.issue", "issuer3", asset="Z", to=a, units=1), "issuer3", "unauthorized",
         "another verified issuer issues someone else's asset")
    S.no(S.tx("asset.create", "issuer2", asset="NV", name="n", kind="bond", currency="USD", principal=1,
              units=1, coupon_bps=0, maturity="2030-01-01", rating="A", risk_weight_pct=0, rules={}),
         "issuer2", "not_verified", "issuer without kyc creates an asset")
    S.ok(S.tx("asset.create", "issuer3", asset="I3", name="n", kind="bond", currency="USD", principal=1,
              units=100, coupon_bps=0, maturity="2030-01-01", rating="A", risk_weight_pct=0, rules={}),
         "issuer3", "issuer3 creates I3")
    S.ok(S.tx("account.update", A, account=S.pk("issuer3"), kyc=False), A, "admin revokes issuer3's kyc")
    S.no(S.tx("asset.issue", "issuer3", asset="I3", to=a, units=1), "issuer3", "not_verified",
         "the asset's own issuer without kyc")
    S.no(S.tx("holding.freeze", "agent", asset="Z", account=stranger.pk, units=0), "agent", "not_found",
         "freeze of an unknown account")
    S.no(S.tx("transfer.force", "agent", asset="Z", **{"from": stranger.pk}, to=a, units=1, reason="r"),
         "agent", "not_found", "force from an unknown account")
    S.no(S.tx("account.update", A, account=stranger.pk, kyc=True), A, "not_found", "update of an unknown account")
    S.no(S.tx("account.open", A, account=a, roles=["investor"], jurisdiction="US", kyc=True), A, "exists",
         "open an existing account")
    S.no(S.tx("asset.create", "issuer", asset="Z", name="n", kind="bond", currency="USD", principal=1,
              units=1, coupon_bps=0, maturity="2030-01-01", rating="A", risk_weight_pct=0, rules={}),
         "issuer", "exists", "create an existing asset id")
    S.no(S.tx("account.recover", "agent", account=S.pk("d"), to=b, reason="lost"), "agent", "exists",
         "recover onto an existing account")
    S.no(S.tx("account.update", A, account=A.pk, roles=["agent"]), A, "invalid",
         "the only admin drops its admin role")
    S.no(S.tx("account.update", A, account=A.pk, frozen=True), A, "invalid", "the only admin freezes itself")


# ------------------------------------------------------------------ step 8

def rules(S):
    a, b, c, d = S.pk("a"), S.pk("b"), S.pk("c"), S.pk("d")
    iss = "issuer"
    # min_units on issue and the exact boundary
    S.no(S.tx("asset.issue", iss, asset="R1", to=a, units=99), iss, "min_units", "issue 99 with min_units 100")
    S.ok(S.tx("asset.issue", iss, asset="R1", to=a, units=100), iss, "issue exactly min_units 100")
    S.ok(S.tx("asset.issue", iss, asset="R1", to=b, units=5000), iss, "issue 5000 to b (second holder)")
    # max_holders 2 reached
    S.no(S.tx("asset.issue", iss, asset="R1", to=c, units=100), iss, "max_holders", "a third holder, max 2")
    S.ok(S.tx("asset.issue", iss, asset="R1", to=a, units=400), iss, "an existing holder may receive more")
    # exceeds_authorised: issued 5500 of 10000
    S.no(S.tx("asset.issue", iss, asset="R1", to=b, units=4501), iss, "exceeds_authorised",
         "issue one unit past authorised")
    S.ok(S.tx("asset.issue", iss, asset="R1", to=b, units=4500), iss, "issue up to exactly authorised")
    # a holds 500, b 9500
    S.no(S.tx("transfer", "a", asset="R1", to=b, units=450), "a", "min_units",
         "sender remainder 50 under min_units")
    S.no(S.tx("transfer", "a", asset="R1", to=b, units=501), "a", "insufficient_units", "transfer more than held")
    S.no(S.tx("transfer", "a", asset="R1", to=tc.Key().pk, units=100), "a", "not_found", "to is not an account")
    S.no(S.tx("transfer", "a", asset="R1", to=S.pk("nokyc"), units=100), "a", "not_verified",
         "receiver without kyc")
    S.no(S.tx("transfer", "a", asset="R1", to=S.pk("ice"), units=100), "a", "frozen", "receiver account frozen")
    S.no(S.tx("transfer", "a", asset="R1", to=S.pk("fr"), units=100), "a", "jurisdiction",
         "receiver in FR, asset allows US, GB")
    S.no(S.tx("transfer", "b", asset="R1", to=c, units=99), "b", "min_units", "new holding of 99 < min_units")
    S.no(S.tx("transfer", "a", asset="R1", to=c, units=100), "a", "max_holders",
         "a third holder by transfer")
    S.ok(S.tx("transfer", "a", asset="R1", to=c, units=500), "a",
         "a moves everything to c: sender ends at 0, count unchanged, allowed at max_holders")
    h = S.n.call("asset.holders", {"asset": "R1"})
    T.eq(sorted(x["account"] for x in h["holders"]), sorted([b, c]), "a's zero holding is not listed")
    T.eq(S.n.call("asset.get", {"asset": "R1"}).get("holders"), 2, "holders counts units > 0 only")
    # asset.update replaces the rules for later txs
    S.no(S.tx("asset.update", iss, asset="R1"), iss, "invalid", "asset.update changing nothing")
    S.no(S.tx("asset.update", "issuer3", asset="R1", rating="C"), "issuer3", "unauthorized",
         "asset.update by another issuer")
    S.no(S.tx("transfer", "b", asset="R1", to=S.pk("fr"), units=100), "b", "jurisdiction",
         "FR receiver before the rules change")
    S.ok(S.tx("asset.update", iss, asset="R1", rules={"jurisdictions": ["US", "GB", "FR"], "max_holders": 3,
                                                      "min_units": 100, "lockup_until": 0}), iss,
         "issuer replaces R1's rules (FR allowed, 3 holders)")
    S.ok(S.tx("transfer", "b", asset="R1", to=S.pk("fr"), units=100), "b", "FR receiver after the rules change")
    S.no(S.tx("transfer", "b", asset="R1", to=d, units=100), "b", "max_holders", "a fourth holder, max 3")
    # lockup
    S.no(S.tx("transfer", "a", asset="LOCK", to=b, units=100), "a", "lockup", "transfer before lockup_until")
    S.ok(S.tx("transfer", "a", asset="PAST", to=b, units=100), "a", "transfer after lockup_until passed")
    # freezes
    S.no(S.tx("holding.freeze", "agent", asset="Z", account=a, units=100000), "agent", "insufficient_units",
         "freeze more than held")
    S.ok(S.tx("holding.freeze", "agent", asset="Z", account=a, units=300), "agent", "freeze 300 units of a on Z")
    za = [h for h in S.n.call("account.get", {"account": a})["holdings"] if h["asset"] == "Z"][0]
    avail = za["units"] - za["frozen"]
    S.no(S.tx("transfer", "a", asset="Z", to=b, units=avail + 1), "a", "insufficient_units",
         "transfer one unit more than available")
    S.ok(S.tx("transfer.force", "agent", asset="Z", **{"from": a}, to=S.pk("ice"), units=avail + 1,
              reason="court"), "agent", "force ignores the freeze and the receiver's account freeze")
    S.no(S.tx("transfer.force", "agent", asset="Z", **{"from": a}, to=b, units=100000, reason="court"),
         "agent", "insufficient_units", "force more than held")
    S.no(S.tx("transfer.force", "agent", asset="Z", **{"from": a}, to=S.pk("nokyc"), units=1, reason="court"),
         "agent", "not_verified", "force to a receiver without kyc")
    S.no(S.tx("asset.redeem", "issuer", asset="Z", **{"from": a}, units=100000, amount=0), "issuer",
         "insufficient_units", "redeem more than held")
    S.no(S.tx("asset.distribute", "issuer", asset="E", amount=100, kind="interest"), "issuer",
         "insufficient_units", "distribution with nothing issued")
    # statuses
    S.ok(S.tx("asset.status", "issuer", asset="Z", status="defaulted"), "issuer", "issuer marks Z defaulted")
    S.no(S.tx("transfer", "b", asset="Z", to=a, units=1), "b", "asset_not_active", "transfer when defaulted")
    S.no(S.tx("asset.issue", "issuer", asset="Z", to=a, units=1), "issuer", "asset_not_active",
         "issue when defaulted")
    S.no(S.tx("asset.status", "issuer", asset="Z", status="defaulted"), "issuer", "invalid",
         "status to the same status")
    S.no(S.tx("asset.status", "issuer", asset="Z", status="closed"), "issuer", "invalid",
         "closed with units issued")
    S.no(S.tx("asset.status", "a", asset="Z", status="active"), "a", "unauthorized", "an investor sets status")
    S.no(S.tx("asset.status", S.A, asset="Z", status="active"), S.A, "unauthorized",
         "admin makes an issuer's move")
    S.ok(S.tx("asset.status", "issuer", asset="Z", status="active"), "issuer", "issuer reactivates Z")
    # close E (nothing issued), then nothing more is allowed
    S.ok(S.tx("asset.status", "issuer", asset="E", status="closed"), "issuer", "close E with nothing issued")
    S.no(S.tx("asset.update", "issuer", asset="E", rating="C"), "issuer", "asset_not_active", "update when closed")
    S.no(S.tx("asset.issue", "issuer", asset="E", to=a, units=1), "issuer", "asset_not_active", "issue when closed")
    S.no(S.tx("holding.freeze", "agent", asset="E", account=a, units=0), "agent", "asset_not_active",
         "freeze when closed")
    S.no(S.tx("asset.status", "issuer", asset="E", status="active"), "issuer", "invalid", "out of closed")
    # admin pause ("paused" is the status name we assume) and lifting it
    r = S.n.submit(S.tx("asset.status", S.A, asset="PAST", status="paused"), S.A)
    if T.check(isinstance(r, dict) and "seq" in r, "admin pauses PAST (status \"paused\")", r):
        S.no(S.tx("transfer", "b", asset="PAST", to=a, units=100), "b", "asset_not_active",
             "transfer when paused")
        S.no(S.tx("asset.status", "issuer", asset="PAST", status="active"), "issuer", "unauthorized",
             "issuer lifts an admin pause")
        S.ok(S.tx("asset.status", S.A, asset="PAST", status="active"), S.A, "admin lifts the pause")


def multi_reasons(S):
    """tx.check: past step 7, every failing rule of step 8 once, in order."""
    a = S.pk("a")
    S.ok(S.tx("holding.freeze", "agent", asset="M", account=a, units=900), "agent", "freeze 900 of a's 1000 M")
    size = S.n.head()["size"]
    # M: jurisdictions [US], max_holders 1, min_units 100, lockup far; receiver 'bad': FR, no kyc, frozen
    x = S.tx("transfer", "a", asset="M", to=S.pk("bad"), units=950)
    r = S.n.check_tx(x, S.key("a"))
    got = [y.get("reason") for y in r.get("reasons", [])] if isinstance(r, dict) else r
    T.eq(got, ["lockup", "insufficient_units", "not_verified", "frozen", "jurisdiction", "max_holders",
               "min_units"], "tx.check lists every failing step-8 rule in order")
    T.check(isinstance(r, dict) and r.get("ok") is False and r.get("duplicate") is False and r.get("seq") is None
            and all(isinstance(y.get("detail"), str) for y in r.get("reasons", [])),
            "tx.check: ok false, not duplicate, seq null, each reason with a detail", r)
    r2 = S.n.submit(x, S.key("a"))
    T.eq(tc.reason_of(r2), "lockup", "tx.submit of the same names only the first (lockup)")
    x = tc.make_tx("account.open", S.key("a"), chain="other.example/x", account=tc.Key().pk,
                   roles=["investor"], jurisdiction="US", kyc=True)
    r = S.n.check_tx(x, S.key("a"))
    T.eq([y.get("reason") for y in r.get("reasons", [])], ["wrong_chain"],
         "tx.check: a failure of steps 1-7 is the only reason listed")
    r = S.n.check_tx(S.tx("account.open", "a", account=tc.Key().pk, roles=["investor"], jurisdiction="US",
                          kyc=True), S.key("a"))
    T.eq([y.get("reason") for y in r.get("reasons", [])], ["unauthorized"], "tx.check: unauthorized alone")
    r = S.n.check_tx(S.tx("transfer", "a", asset="M", to=S.pk("c"), units=50), S.key("a"))
    T.eq([y.get("reason") for y in r.get("reasons", [])],
         ["lockup", "min_units", "max_holders"],
         "tx.check: receiver min_units before max_holders (sender remainder 950 fine)")
    T.eq(S.n.head()["size"], size, "tx.check appended nothing")


def main():
    node = tc.Node()
    try:
        node.init()
        node.start()
        S = R(node)
        setup(S)
        T.section("envelope", envelope, S)
        T.section("early steps", early_steps, S)
        T.section("rules", rules, S)
        T.section("multi reasons", multi_reasons, S)
        want = {"invalid", "wrong_chain", "bad_signature", "expired", "id_conflict", "not_found", "exists",
                "unauthorized", "frozen", "not_verified", "jurisdiction", "lockup", "min_units", "max_holders",
                "insufficient_units", "exceeds_authorised", "asset_not_active"}
        T.check(want <= SEEN, "every refusal reason of section 6 was seen", sorted(want - SEEN))
        ok, msg, _ = tc.check_chain(node.all_entries())
        T.check(ok, "journal still sound after all refusals: " + msg, msg)
        T.eq(node.stop(), 0, "tranched exits 0 on SIGTERM")
        v = node.ctl("verify", "--datadir", node.datadir)
        T.check(v.returncode == 0, "tranchectl verify exits 0",
                (v.stdout + v.stderr).decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001
        T.check(False, "fixture", traceback.format_exc() + "\n" + node.logs())
    finally:
        node.cleanup()
    T.done()


if __name__ == "__main__":
    main()
