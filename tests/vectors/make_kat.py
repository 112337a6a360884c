#!/usr/bin/python3
"""make_kat.py - known-answer vectors for tranche (PROTOCOL.md sections 2 and 3).

Computed independently of the C code, with Python's hashlib and the
`cryptography` package (Ed25519, RFC 8032; signatures are deterministic).
Writes a C header on stdout:

    /usr/bin/python3 tests/vectors/make_kat.py > tests/unit/kat_vectors.h

Inputs are fixed: node seed = bytes 0x01..0x20, admin seed = 0x21..0x40,
investor seed = 0x41..0x60, chain "test.example/kat", entry times
1700000000000 (seq 1) and 1700000000001 (seq 2).
"""
import base64
import hashlib
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

CHAIN = "test.example/kat"
TIME1 = 1700000000000
TIME2 = 1700000000001


def seed_range(first):
    return bytes(range(first, first + 32))


def pub_of(seed):
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    return sk.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)


def sign(seed, msg):
    return Ed25519PrivateKey.from_private_bytes(seed).sign(msg)


def sha256(b):
    return hashlib.sha256(b).digest()


def tx_sig(seed, tx):
    return sign(seed, b"TRANCHE/TX/1\n" + tx)


def entry_bytes(seq, time, prev, txid, sig):
    assert len(prev) == 32 and len(txid) == 32 and len(sig) == 64
    return (b"TRANCHE/ENTRY/1\n" + struct.pack(">Q", seq) + struct.pack(">Q", time)
            + prev + txid + sig)


def leaf_hash(eb):
    return sha256(b"\x00" + eb)


def node_hash(l, r):
    return sha256(b"\x01" + l + r)


def c_str(name, value, out):
    """Emit a C string constant, split into 64-char chunks for readability."""
    if len(value) <= 64:
        out.append('#define %s "%s"' % (name, value))
        return
    parts = [value[i:i + 64] for i in range(0, len(value), 64)]
    out.append("#define %s \\" % name)
    for i, p in enumerate(parts):
        out.append('  "%s"%s' % (p, " \\" if i + 1 < len(parts) else ""))


def c_text(name, text, out):
    """Emit an arbitrary ASCII text (JSON, note) as a C string literal."""
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out.append('#define %s "%s"' % (name, esc))


def main():
    node_seed, admin_seed, inv_seed = seed_range(0x01), seed_range(0x21), seed_range(0x41)
    node_pk, admin_pk, inv_pk = pub_of(node_seed), pub_of(admin_seed), pub_of(inv_seed)
    N, A, I = node_pk.hex(), admin_pk.hex(), inv_pk.hex()

    # Genesis: the exact bytes of section 4, signed by the node key.
    tx1 = ('{"type":"genesis","chain":"%s","signer":"%s","id":"genesis","admin":"%s"}'
           % (CHAIN, N, A)).encode()
    txid1 = sha256(tx1)
    sig1 = tx_sig(node_seed, tx1)
    eb1 = entry_bytes(1, TIME1, b"\x00" * 32, txid1, sig1)
    h1 = leaf_hash(eb1)

    # account.open by the admin (compact JSON, fields in this order).
    tx2 = ('{"type":"account.open","chain":"%s","signer":"%s","id":"open-1",'
           '"account":"%s","roles":["investor"],"jurisdiction":"US","kyc":true}'
           % (CHAIN, A, I)).encode()
    txid2 = sha256(tx2)
    sig2 = tx_sig(admin_seed, tx2)
    eb2 = entry_bytes(2, TIME2, h1, txid2, sig2)
    h2 = leaf_hash(eb2)

    root2 = node_hash(h1, h2)

    # Checkpoint (C2SP tlog-checkpoint / signed-note) of the size-2 tree.
    key_id = sha256(CHAIN.encode() + b"\x0a" + b"\x01" + node_pk)[:4]
    vkey = "%s+%s+%s" % (CHAIN, key_id.hex(), base64.b64encode(b"\x01" + node_pk).decode())
    body = "%s\n%d\n%s\n" % (CHAIN, 2, base64.b64encode(root2).decode())
    note_sig = sign(node_seed, body.encode())
    note = body + "\n\u2014 %s %s\n" % (CHAIN, base64.b64encode(key_id + note_sig).decode())

    # Self-checks of the independent computation.
    for pk, msg, s in ((node_pk, b"TRANCHE/TX/1\n" + tx1, sig1),
                       (admin_pk, b"TRANCHE/TX/1\n" + tx2, sig2),
                       (node_pk, body.encode(), note_sig)):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        Ed25519PublicKey.from_public_bytes(pk).verify(s, msg)
    assert len(eb1) == 16 + 8 + 8 + 32 + 32 + 64 == 160

    o = []
    o.append("/* kat_vectors.h - known-answer vectors for tranche (PROTOCOL.md sections 2, 3).")
    o.append(" *")
    o.append(" * GENERATED FILE - do not edit.  Regenerate with:")
    o.append(" *     /usr/bin/python3 tests/vectors/make_kat.py > tests/unit/kat_vectors.h")
    o.append(" *")
    o.append(" * Computed independently of the C code by tests/vectors/make_kat.py using")
    o.append(" * Python hashlib (SHA-256) and the `cryptography` package (Ed25519, RFC 8032,")
    o.append(" * deterministic signatures):")
    o.append(" *   - seeds: node = bytes 0x01..0x20, admin = 0x21..0x40, investor = 0x41..0x60;")
    o.append(" *     public keys are the RFC 8032 keys of those 32-byte seeds;")
    o.append(" *   - chain id \"%s\";" % CHAIN)
    o.append(" *   - TX1 = the genesis bytes of section 4, signed by the node key;")
    o.append(" *     TX2 = an account.open of the investor (roles [investor], US, kyc true),")
    o.append(" *     id \"open-1\", signed by the admin key;")
    o.append(" *   - txid = SHA-256(tx); sig = Ed25519(seed, \"TRANCHE/TX/1\\n\" || tx);")
    o.append(" *   - entry_bytes = \"TRANCHE/ENTRY/1\\n\" || u64be(seq) || u64be(time) || prev(32)")
    o.append(" *                   || txid(32) || sig(64)   (160 bytes);")
    o.append(" *     hash = SHA-256(0x00 || entry_bytes); seq 1 at time %d with prev = 32 zero" % TIME1)
    o.append(" *     bytes, seq 2 at time %d with prev = hash of seq 1;" % TIME2)
    o.append(" *   - ROOT2 = SHA-256(0x01 || H1 || H2), the RFC 9162 root of the size-2 tree;")
    o.append(" *   - the checkpoint is the C2SP signed note of that tree, signed by the node")
    o.append(" *     key, key name = chain id, key id = SHA-256(name || 0x0A || 0x01 || pk)[:4].")
    o.append(" * All byte strings are lowercase hex unless the name ends in _TEXT. */")
    o.append("#ifndef KAT_VECTORS_H")
    o.append("#define KAT_VECTORS_H")
    o.append("")
    c_text("KAT_CHAIN", CHAIN, o)
    c_str("KAT_NODE_SEED", node_seed.hex(), o)
    c_str("KAT_NODE_PK", N, o)
    c_str("KAT_ADMIN_SEED", admin_seed.hex(), o)
    c_str("KAT_ADMIN_PK", A, o)
    c_str("KAT_INVESTOR_SEED", inv_seed.hex(), o)
    c_str("KAT_INVESTOR_PK", I, o)
    o.append("")
    o.append("/* entry 1: genesis */")
    c_text("KAT_TX1_TEXT", tx1.decode(), o)
    o.append("#define KAT_TX1_LEN %d" % len(tx1))
    c_str("KAT_TX1_TXID", txid1.hex(), o)
    c_str("KAT_TX1_SIG", sig1.hex(), o)
    o.append("#define KAT_TIME1 %dULL" % TIME1)
    c_str("KAT_ENTRY1_BYTES", eb1.hex(), o)
    c_str("KAT_ENTRY1_HASH", h1.hex(), o)
    o.append("")
    o.append("/* entry 2: account.open */")
    c_text("KAT_TX2_TEXT", tx2.decode(), o)
    o.append("#define KAT_TX2_LEN %d" % len(tx2))
    c_str("KAT_TX2_TXID", txid2.hex(), o)
    c_str("KAT_TX2_SIG", sig2.hex(), o)
    o.append("#define KAT_TIME2 %dULL" % TIME2)
    c_str("KAT_ENTRY2_BYTES", eb2.hex(), o)
    c_str("KAT_ENTRY2_HASH", h2.hex(), o)
    o.append("")
    o.append("/* Merkle root of the tree of size 2 */")
    c_str("KAT_ROOT2", root2.hex(), o)
    o.append("")
    o.append("/* checkpoint of the tree of size 2 (UTF-8; the dash is U+2014) */")
    c_str("KAT_NOTE_KEY_ID", key_id.hex(), o)
    c_text("KAT_VKEY_TEXT", vkey, o)
    c_str("KAT_NOTE_BODY_SIG", note_sig.hex(), o)
    # C string literal: emit the em dash as octal escapes to keep the header ASCII.
    esc = note.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    esc = esc.replace("\u2014", "\\342\\200\\224")
    o.append('#define KAT_CHECKPOINT2_TEXT "%s"' % esc)
    o.append("")
    o.append("#endif")
    sys.stdout.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
