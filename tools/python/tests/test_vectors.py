"""The library against the known-answer vectors the C unit tests use
(tests/unit/kat_vectors.h): keys, tx bytes, txids, signatures, entry bytes
and hashes, the Merkle root and the signed checkpoint, byte for byte."""
import base64

import pytest

import tranche
from tranche import verify


def seed(kat, who):
    return bytes.fromhex(kat[who + "_SEED"])


def test_public_keys_from_seeds(kat):
    for who in ("NODE", "ADMIN", "INVESTOR"):
        assert tranche.Key(seed(kat, who)).public == kat[who + "_PK"]


def test_genesis_and_account_open_bytes_txids_signatures(kat):
    admin = tranche.Key(seed(kat, "ADMIN"))
    tx2 = tranche.tx_fields("account.open", kat["CHAIN"], admin.public, id="open-1",
                            account=kat["INVESTOR_PK"], roles=["investor"], jurisdiction="US", kyc=True)
    b2 = tranche.encode(tx2)
    assert b2 == kat["TX2_TEXT"].encode() and len(b2) == kat["TX2_LEN"]
    signed = tranche.Signer(admin, kat["CHAIN"]).account_open(
        id="open-1", account=kat["INVESTOR_PK"], roles=["investor"], jurisdiction="US", kyc=True)
    assert signed.tx_bytes == b2
    assert signed.txid == kat["TX2_TXID"]
    assert signed.sig == kat["TX2_SIG"]
    node = tranche.Key(seed(kat, "NODE"))
    tx1 = kat["TX1_TEXT"].encode()
    assert tranche.txid(tx1) == kat["TX1_TXID"]
    assert tranche.sign(tx1, node) == kat["TX1_SIG"]
    assert tranche.verify_signature(node.public, kat["TX1_SIG"], tranche.TX_DOMAIN + tx1)
    assert not tranche.verify_signature(admin.public, kat["TX1_SIG"], tranche.TX_DOMAIN + tx1)


def test_entry_bytes_hashes_and_root(kat):
    e1 = verify.entry_bytes(1, kat["TIME1"], bytes(32), bytes.fromhex(kat["TX1_TXID"]),
                            bytes.fromhex(kat["TX1_SIG"]))
    assert e1.hex() == kat["ENTRY1_BYTES"]
    h1 = verify.leaf_hash(e1)
    assert h1.hex() == kat["ENTRY1_HASH"]
    h2 = tranche.entry_hash(2, kat["TIME2"], h1, bytes.fromhex(kat["TX2_TXID"]), bytes.fromhex(kat["TX2_SIG"]))
    assert h2.hex() == kat["ENTRY2_HASH"]
    assert tranche.merkle_root([h1, h2]).hex() == kat["ROOT2"]


def test_vkey_and_checkpoint(kat):
    node_pk = bytes.fromhex(kat["NODE_PK"])
    vk = tranche.Vkey(kat["CHAIN"], node_pk)
    assert str(vk) == kat["VKEY_TEXT"]
    assert vk.key_id.hex() == kat["NOTE_KEY_ID"]
    assert str(tranche.Vkey.parse(kat["VKEY_TEXT"])) == kat["VKEY_TEXT"]
    cp = tranche.open_checkpoint(kat["CHECKPOINT2_TEXT"], kat["VKEY_TEXT"])
    assert (cp.origin, cp.size, cp.root.hex()) == (kat["CHAIN"], 2, kat["ROOT2"])
    body = kat["CHECKPOINT2_TEXT"].split("\n\n")[0] + "\n"
    assert tranche.verify_signature(node_pk, kat["NOTE_BODY_SIG"], body.encode())


@pytest.mark.parametrize("mutate, why", [
    (lambda t: t.replace("\n2\n", "\n3\n"), "size changed"),
    (lambda t: t.replace("/CZd", "/CZe"), "root changed"),
    (lambda t: t.replace("zFlt", "zFlu"), "signature changed"),
    (lambda t: t.replace("\u2014 ", "- "), "not an em dash"),
    (lambda t: t[:-1], "no final newline"),
    (lambda t: t.replace("\n\n", "\n"), "no blank line"),
    (lambda t: t.replace("test.example/kat\n", "test.example/kat\x01\n", 1), "control character"),
    (lambda t: t.replace("wuAA5Qw=", "wuAA5Qx="), "non-canonical base64 (padding bits)"),
    (lambda t: t.replace("\n\n", "\next\n\n\n", 1), "an empty extension line"),
])
def test_checkpoint_refused(kat, mutate, why):
    bad = mutate(kat["CHECKPOINT2_TEXT"])
    assert bad != kat["CHECKPOINT2_TEXT"], why
    with pytest.raises(tranche.VerifyError):
        tranche.open_checkpoint(bad, kat["VKEY_TEXT"])


def test_checkpoint_other_keys_ignored_and_required(kat):
    other = tranche.Key.generate()
    vk_other = tranche.Vkey(kat["CHAIN"], other.public_bytes)
    body = kat["CHECKPOINT2_TEXT"].split("\n\n")[0] + "\n"
    witness = "\u2014 %s %s\n" % (kat["CHAIN"], base64.b64encode(vk_other.key_id + other.sign(body.encode())).decode())
    cosigned = kat["CHECKPOINT2_TEXT"] + witness
    assert tranche.open_checkpoint(cosigned, kat["VKEY_TEXT"]).size == 2   # the witness line is ignored
    assert tranche.open_checkpoint(cosigned, vk_other).size == 2           # and verifies on its own
    with pytest.raises(tranche.VerifyError):                                # our key's line is required
        tranche.open_checkpoint(body + "\n" + witness, kat["VKEY_TEXT"])
    # The same key under another name (another log's origin) must not pass.
    with pytest.raises(tranche.VerifyError):
        tranche.open_checkpoint(kat["CHECKPOINT2_TEXT"], tranche.Vkey("other.example/log", bytes.fromhex(kat["NODE_PK"])))


@pytest.mark.parametrize("text", [
    "test.example/kat+cc596dd8+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk",   # wrong key id
    "test.example/kat+CC596DD9+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk",   # uppercase hex
    "test.example/kat+cc596dd9+Anm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk",   # not algorithm 0x01
    "test.example/kat+cc596dd9",
    "",
])
def test_vkey_refused(text):
    with pytest.raises(tranche.VerifyError):
        tranche.Vkey.parse(text)
