"""Building and signing txs (PROTOCOL.md §2 and §4).

A tx is a JSON object carried as a string: the exact bytes are signed and
stored, so no canonical form is needed — but this module writes the same
bytes `tranchectl ... --print` writes for the same fields (compact JSON, the
common fields first, then each type's fields in the order of the table
below, integers as plain digits, UTF-8 unescaped), so the two can be checked
against each other byte for byte.

    txid      = SHA-256(tx_bytes)
    message   = "TRANCHE/TX/1\\n" || tx_bytes
    signature = Ed25519(signer's key, message)

Values the ledger judges (key syntax, regexes, ranges, dates) are left to
the node, whose refusal names the problem (`invalid: ...`); what JSON itself
needs (a Python int for an integer, a bool for a bool) is checked here.
"""
import hashlib
import json
import os

from .errors import TxError
from .keys import Key
from .limits import INT_MAX, TX_BYTES_MAX

TX_DOMAIN = b"TRANCHE/TX/1\n"

# Field kinds: what Python value each field takes.
STR, INT, BOOL, LIST, RULES, DOCS = "str", "int", "bool", "list", "rules", "docs"
RULE_FIELDS = (("jurisdictions", LIST), ("max_holders", INT), ("min_units", INT), ("lockup_until", INT))

# type: ((field, kind, required), ...) in the order the tx bytes list them.
TX_TYPES = {
    "account.open": (("account", STR, True), ("roles", LIST, True), ("jurisdiction", STR, True),
                     ("kyc", BOOL, True)),
    "account.update": (("account", STR, True), ("roles", LIST, False), ("jurisdiction", STR, False),
                       ("kyc", BOOL, False), ("frozen", BOOL, False)),
    "account.recover": (("account", STR, True), ("to", STR, True), ("reason", STR, True)),
    "asset.create": (("asset", STR, True), ("name", STR, True), ("kind", STR, True), ("currency", STR, True),
                     ("principal", INT, True), ("units", INT, True), ("coupon_bps", INT, True),
                     ("maturity", STR, True), ("rating", STR, True), ("risk_weight_pct", INT, True),
                     ("rules", RULES, True), ("documents", DOCS, False)),
    "asset.update": (("asset", STR, True), ("rating", STR, False), ("risk_weight_pct", INT, False),
                     ("maturity", STR, False), ("rules", RULES, False), ("documents", DOCS, False)),
    "asset.issue": (("asset", STR, True), ("to", STR, True), ("units", INT, True)),
    "asset.redeem": (("asset", STR, True), ("from", STR, True), ("units", INT, True), ("amount", INT, True)),
    "asset.distribute": (("asset", STR, True), ("amount", INT, True), ("kind", STR, True), ("memo", STR, False)),
    "asset.status": (("asset", STR, True), ("status", STR, True)),
    "transfer": (("asset", STR, True), ("to", STR, True), ("units", INT, True), ("memo", STR, False)),
    "transfer.force": (("asset", STR, True), ("from", STR, True), ("to", STR, True), ("units", INT, True),
                       ("reason", STR, True)),
    "holding.freeze": (("asset", STR, True), ("account", STR, True), ("units", INT, True)),
}


def new_id():
    """A fresh tx id: 16 random lowercase hex characters (as tranchectl)."""
    return os.urandom(8).hex()


def _int(name, v):
    if type(v) is not int or not 0 <= v <= INT_MAX:  # bool is not an integer here
        raise TxError("%s must be an int 0..2^53-1, got %r" % (name, v))
    return v


def _value(name, kind, v):
    if kind == STR:
        if not isinstance(v, str):
            raise TxError("%s must be a str, got %r" % (name, v))
        return v
    if kind == INT:
        return _int(name, v)
    if kind == BOOL:
        if not isinstance(v, bool):
            raise TxError("%s must be True or False, got %r" % (name, v))
        return v
    if kind == LIST:
        if isinstance(v, str) or not all(isinstance(x, str) for x in v):
            raise TxError("%s must be a list of str, got %r" % (name, v))
        return list(v)
    if kind == RULES:
        v = {} if v is None else v
        if not isinstance(v, dict):
            raise TxError("rules must be a dict, got %r" % (v,))
        unknown = set(v) - {n for n, _ in RULE_FIELDS}
        if unknown:
            raise TxError("unknown rules %s; rules are %s" % (sorted(unknown), [n for n, _ in RULE_FIELDS]))
        return {n: _value("rules." + n, k, v[n]) for n, k in RULE_FIELDS if v.get(n) is not None}
    if kind == DOCS:
        docs = []
        for d in v:
            name_, sha = (d["name"], d["sha256"]) if isinstance(d, dict) else d
            docs.append({"name": _value("documents.name", STR, name_),
                         "sha256": _value("documents.sha256", STR, sha)})
        return docs
    raise AssertionError(kind)


def tx_fields(type_, chain, signer, id=None, expires=None, **fields):
    """The tx as an ordered dict.  `from` may be given as `from_` (a Python
    keyword).  Raises TxError for an unknown type or field, a missing
    required field, or a value of the wrong Python type."""
    if type_ not in TX_TYPES:
        raise TxError("unknown tx type %r; types are %s" % (type_, sorted(TX_TYPES)))
    if "from_" in fields:
        fields["from"] = fields.pop("from_")
    spec = TX_TYPES[type_]
    unknown = set(fields) - {n for n, _, _ in spec}
    if unknown:
        raise TxError("%s has no field %s" % (type_, ", ".join(sorted(unknown))))
    tx = {"type": type_, "chain": _value("chain", STR, chain), "signer": _value("signer", STR, signer),
          "id": _value("id", STR, id if id is not None else new_id())}
    if expires is not None:
        tx["expires"] = _int("expires", expires)
    for name, kind, required in spec:
        v = fields.get(name)
        if v is None and kind == RULES and required:
            v = {}  # asset.create always carries a rules object
        if v is None:
            if required:
                raise TxError("%s needs %s" % (type_, name))
            continue
        tx[name] = _value(name, kind, v)
    return tx


def encode(tx):
    """Compact JSON bytes of a tx dict, as cJSON_PrintUnformatted writes them."""
    try:
        b = json.dumps(tx, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise TxError("a text field is not valid Unicode (a lone surrogate?): %s" % e) from None
    if len(b) > TX_BYTES_MAX:
        raise TxError("the tx is %d bytes; at most %d" % (len(b), TX_BYTES_MAX))
    return b


def txid(tx_bytes):
    """SHA-256 of the tx bytes, 64 lowercase hex."""
    return hashlib.sha256(bytes(tx_bytes)).hexdigest()


def sign(tx_bytes, key):
    """The Ed25519 signature of "TRANCHE/TX/1\\n" || tx_bytes, 128 lowercase hex."""
    return key.sign(TX_DOMAIN + bytes(tx_bytes)).hex()


class SignedTx:
    """Exact tx bytes and their signature: what tx.submit takes.  Resubmitting
    the same SignedTx is always safe (idempotent by txid and (signer, id))."""

    __slots__ = ("tx_bytes", "sig")

    def __init__(self, tx_bytes, sig):
        self.tx_bytes = bytes(tx_bytes)
        self.sig = sig

    @classmethod
    def sign(cls, tx_bytes, key):
        tx_bytes = tx_bytes.encode("utf-8") if isinstance(tx_bytes, str) else bytes(tx_bytes)
        return cls(tx_bytes, sign(tx_bytes, key))

    @classmethod
    def from_json(cls, text):
        """From {"tx": string, "sig": hex}: what `tranchectl ... --print` writes."""
        obj = json.loads(text)
        if not isinstance(obj, dict) or not isinstance(obj.get("tx"), str) or not isinstance(obj.get("sig"), str):
            raise TxError('a signed tx is a JSON object {"tx": string, "sig": string}')
        return cls(obj["tx"].encode("utf-8"), obj["sig"])

    @property
    def tx(self):
        return self.tx_bytes.decode("utf-8")

    @property
    def txid(self):
        return txid(self.tx_bytes)

    def params(self):
        return {"tx": self.tx, "sig": self.sig}

    def to_json(self):
        return json.dumps(self.params(), separators=(",", ":"), ensure_ascii=False)

    def __repr__(self):
        return "SignedTx(%s)" % self.txid[:16]


class Signer:
    """Builds and signs txs for one key on one chain.

        s = Signer(Key.load("issuer.key"), "bank.example/tranche/prod")
        signed = s.asset_issue(asset="ACME-TL-2029", to=investor_pk, units=100)

    Every method takes the type's fields (PROTOCOL.md §4) as keywords, plus
    `id` (default: random) and `expires` (ms, optional)."""

    def __init__(self, key, chain):
        if not isinstance(key, Key):
            raise TypeError("key must be a tranche.Key")
        self.key = key
        self.chain = chain

    def build(self, type_, **fields):
        tx = tx_fields(type_, self.chain, self.key.public, **fields)
        return SignedTx.sign(encode(tx), self.key)

    def account_open(self, **f):
        return self.build("account.open", **f)

    def account_update(self, **f):
        return self.build("account.update", **f)

    def account_recover(self, **f):
        return self.build("account.recover", **f)

    def asset_create(self, **f):
        return self.build("asset.create", **f)

    def asset_update(self, **f):
        return self.build("asset.update", **f)

    def asset_issue(self, **f):
        return self.build("asset.issue", **f)

    def asset_redeem(self, **f):
        return self.build("asset.redeem", **f)

    def asset_distribute(self, **f):
        return self.build("asset.distribute", **f)

    def asset_status(self, **f):
        return self.build("asset.status", **f)

    def transfer(self, **f):
        return self.build("transfer", **f)

    def transfer_force(self, **f):
        return self.build("transfer.force", **f)

    def holding_freeze(self, **f):
        return self.build("holding.freeze", **f)
