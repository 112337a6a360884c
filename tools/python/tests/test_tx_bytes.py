"""Every tx type built by the library is byte for byte the tx `tranchectl
... --print` builds from the same fields, with the same signature (Ed25519
is deterministic).  tranchectl is the C side of the contract here."""
import json
import os
import subprocess

import pytest

import tranche

CHAIN = "bank.example/tranche/test"
A = "adc14011f82d1c56d956aa4f9d73d8858361a606048525e0d08c638dc75dd8c7"
B = "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0"
DOC = "ab" * 32
MEMO = 'coupon "Q3" \\ \u00e9\u20ac\U0001F4B6 tab\there'

# (tranchectl command, its flags, the library's type, the library's fields)
CASES = [
    ("account open", ["--account", A, "--roles", "issuer,investor", "--jurisdiction", "US", "--kyc", "true"],
     "account.open", dict(account=A, roles=["issuer", "investor"], jurisdiction="US", kyc=True)),
    ("account update", ["--account", A, "--roles", "agent", "--kyc", "false", "--frozen", "true"],
     "account.update", dict(account=A, roles=["agent"], kyc=False, frozen=True)),
    ("account update", ["--account", A, "--jurisdiction", "GB"],
     "account.update", dict(account=A, jurisdiction="GB")),
    ("account recover", ["--account", A, "--to", B, "--reason", "lost device"],
     "account.recover", dict(account=A, to=B, reason="lost device")),
    ("asset create", ["--asset", "ACME-TL-2029", "--name", "Acme term loan", "--kind", "term_loan",
                      "--currency", "USD", "--principal", "100000000", "--units", "1000", "--coupon-bps", "650",
                      "--maturity", "2029-06-30", "--rating", "BB", "--risk-weight-pct", "100"],
     "asset.create", dict(asset="ACME-TL-2029", name="Acme term loan", kind="term_loan", currency="USD",
                          principal=100000000, units=1000, coupon_bps=650, maturity="2029-06-30", rating="BB",
                          risk_weight_pct=100)),
    ("asset create", ["--asset", "X.1", "--name", "Caf\u00e9 \u20ac", "--kind", "bond", "--currency", "EUR",
                      "--principal", "9007199254740991", "--units", "1", "--coupon-bps", "0",
                      "--maturity", "2030-01-01", "--rating", "A", "--risk-weight-pct", "1250",
                      "--jurisdictions", "US,GB", "--max-holders", "10", "--min-units", "0",
                      "--lockup-until", "1700000000000", "--document", "terms.pdf=" + DOC,
                      "--document", "a=b.pdf=" + DOC],
     "asset.create", dict(asset="X.1", name="Caf\u00e9 \u20ac", kind="bond", currency="EUR",
                          principal=9007199254740991, units=1, coupon_bps=0, maturity="2030-01-01", rating="A",
                          risk_weight_pct=1250, rules=dict(lockup_until=1700000000000, jurisdictions=["US", "GB"],
                                                           max_holders=10, min_units=0),
                          documents=[("terms.pdf", DOC), {"name": "a=b.pdf", "sha256": DOC}])),
    ("asset update", ["--asset", "X.1", "--rating", "B", "--risk-weight-pct", "150", "--maturity", "2031-01-01",
                      "--min-units", "5", "--document", "x=" + DOC],
     "asset.update", dict(asset="X.1", rating="B", risk_weight_pct=150, maturity="2031-01-01",
                          rules=dict(min_units=5), documents=[("x", DOC)])),
    ("asset update", ["--asset", "X.1", "--no-documents"], "asset.update", dict(asset="X.1", documents=[])),
    ("asset issue", ["--asset", "X.1", "--to", A, "--units", "100"],
     "asset.issue", dict(asset="X.1", to=A, units=100)),
    ("asset redeem", ["--asset", "X.1", "--from", A, "--units", "10", "--amount", "0"],
     "asset.redeem", dict(asset="X.1", from_=A, units=10, amount=0)),
    ("asset distribute", ["--asset", "X.1", "--amount", "500000", "--kind", "interest", "--memo", MEMO],
     "asset.distribute", dict(asset="X.1", amount=500000, kind="interest", memo=MEMO)),
    ("asset status", ["--asset", "X.1", "--status", "paused"], "asset.status", dict(asset="X.1", status="paused")),
    ("transfer", ["--asset", "X.1", "--to", A, "--units", "5"], "transfer", dict(asset="X.1", to=A, units=5)),
    ("transfer", ["--asset", "X.1", "--to", A, "--units", "5", "--memo", MEMO, "--expires", "1800000000000"],
     "transfer", dict(asset="X.1", to=A, units=5, memo=MEMO, expires=1800000000000)),
    ("force-transfer", ["--asset", "X.1", "--from", A, "--to", B, "--units", "7", "--reason", "court order 1"],
     "transfer.force", dict(asset="X.1", from_=A, to=B, units=7, reason="court order 1")),
    ("freeze", ["--asset", "X.1", "--account", A, "--units", "0"],
     "holding.freeze", dict(asset="X.1", account=A, units=0)),
]


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("keys") / "signer.key")
    return tranche.Key.generate().save(path), path


def test_every_type_is_covered():
    assert {c[2] for c in CASES} == set(tranche.TX_TYPES)


@pytest.mark.parametrize("n", range(len(CASES)), ids=["%s-%d" % (c[2], i) for i, c in enumerate(CASES)])
def test_same_bytes_and_signature_as_tranchectl(n, keyfile, tranchectl):
    cmd, flags, type_, fields = CASES[n]
    key, path = keyfile
    tx_id = "case-%d" % n
    argv = [tranchectl] + cmd.split() + flags + ["--key", path, "--chain", CHAIN, "--id", tx_id, "--print"]
    r = subprocess.run(argv, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    c_side = json.loads(r.stdout)
    signed = tranche.Signer(key, CHAIN).build(type_, id=tx_id, **dict(fields))
    assert signed.tx == c_side["tx"]
    assert signed.sig == c_side["sig"]
    assert tranche.SignedTx.from_json(r.stdout).txid == signed.txid


@pytest.mark.parametrize("type_, fields, words", [
    ("transfer", dict(asset="X", to=A), "needs units"),
    ("transfer", dict(asset="X", to=A, units=5, colour="red"), "no field colour"),
    ("transfer", dict(asset="X", to=A, units=True), "int"),
    ("transfer", dict(asset="X", to=A, units=-1), "int"),
    ("transfer", dict(asset="X", to=A, units=2 ** 53), "int"),
    ("transfer", dict(asset="X", to=A, units=1.0), "int"),
    ("account.open", dict(account=A, roles="admin", jurisdiction="US", kyc=True), "list of str"),
    ("account.open", dict(account=A, roles=["admin"], jurisdiction="US", kyc="true"), "True or False"),
    ("asset.update", dict(asset="X", rules={"max_holder": 3}), "unknown rules"),
    ("transfer", dict(asset="X", to=A, units=1, memo="\ud800"), "Unicode"),
    ("transfer", dict(asset="X", to=A, units=1, memo="m" * 17000), "bytes"),
    ("genesis", dict(), "unknown tx type"),
])
def test_bad_fields_are_precise_errors(type_, fields, words):
    with pytest.raises(tranche.TxError, match=words):
        tranche.Signer(tranche.Key.generate(), CHAIN).build(type_, **fields)


def test_default_ids_are_fresh():
    s = tranche.Signer(tranche.Key.generate(), CHAIN)
    ids = {json.loads(s.transfer(asset="X", to=A, units=1).tx)["id"] for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 16 for i in ids)
