"""Offline verification (PROTOCOL.md §3): entry hashes, RFC 9162 Merkle
proofs, C2SP signed-note checkpoints, and the tlog-proof receipt files that
`tranchectl proof export` writes (or Client.export_proof).

Nothing here talks to a node: give it the verifier key you pinned (the one
`tranchectl init` or `ledger.checkpoint` printed once) and the texts.  The
parsers are as strict as the node's lib/tr_note.c: canonical base64, valid
UTF-8 without control characters, every bound checked; a failure raises
VerifyError saying what is wrong.
"""
import base64
import binascii
import hashlib
import re
import struct

from .errors import VerifyError
from .keys import verify_signature
from .limits import (MERKLE_PATH_MAX, NOTE_BYTES_MAX, NOTE_NAME_BYTES_MAX, NOTE_SIG_BYTES_MAX,
                     NOTE_SIGS_MAX, PROOF_BYTES_MAX)

ENTRY_DOMAIN = b"TRANCHE/ENTRY/1\n"
ENTRY_BYTES_LEN = 16 + 8 + 8 + 32 + 32 + 64
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_SIG_PREFIX = "\u2014 "
_ALG_ED25519 = b"\x01"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# Go's unicode.IsSpace, which defines "Unicode spaces" for signed-note key names.
_SPACES = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} \
    | set(range(0x2000, 0x200B))


# ---------------------------------------------------------------- entries and Merkle trees

def entry_bytes(seq, time_ms, prev, txid, sig):
    """The 160 entry bytes of §3 (prev, txid: 32 bytes; sig: 64 bytes)."""
    if len(prev) != 32 or len(txid) != 32 or len(sig) != 64:
        raise ValueError("prev and txid are 32 bytes, sig 64")
    return ENTRY_DOMAIN + struct.pack(">QQ", seq, time_ms) + bytes(prev) + bytes(txid) + bytes(sig)


def leaf_hash(data):
    """RFC 9162 leaf hash SHA-256(0x00 || data): for entry bytes, the entry's hash."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def entry_hash(seq, time_ms, prev, txid, sig):
    return leaf_hash(entry_bytes(seq, time_ms, prev, txid, sig))


def merkle_root(leaves):
    """RFC 9162 MTH over leaf hashes (a list of 32-byte hashes)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def _split(n):
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2: True when leaf is leaf `index` (0-based) of the tree
    of `size` leaves whose root is `root`."""
    if not 0 <= index < size or len(path) > MERKLE_PATH_MAX:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, path):
    """RFC 9162 §2.1.4.2: True when the tree of `second` leaves with root
    second_root extends the tree of `first` leaves with root first_root."""
    if len(path) > MERKLE_PATH_MAX or not 0 <= first <= second:
        return False
    if first == second:
        return len(path) == 0 and first_root == second_root
    if first == 0 or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# ---------------------------------------------------------------- text rules of signed notes

def b64decode(text, what="base64"):
    """Canonical padded standard base64 only (as libsodium): a second encoding
    of the same bytes must not verify as well."""
    if len(text) % 4 or not _B64.fullmatch(text):
        raise VerifyError("%s is not base64" % what)
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise VerifyError("%s is not base64" % what) from None
    if base64.b64encode(data).decode("ascii") != text:
        raise VerifyError("%s is not canonical base64" % what)
    return data


def _text_valid(text, newline_ok):
    return all(ord(c) >= 0x20 or (newline_ok and c == "\n") for c in text)


def _name_valid(name, limit=True):
    if not name or "+" in name or (limit and len(name.encode("utf-8")) > NOTE_NAME_BYTES_MAX):
        return False
    return all(ord(c) >= 0x20 and ord(c) not in _SPACES for c in name)


def _decode_text(data, what):
    if isinstance(data, str):
        data = data.encode("utf-8")  # a str came from somewhere that already decoded it
    if len(data) > NOTE_BYTES_MAX:
        raise VerifyError("%s is over %d bytes" % (what, NOTE_BYTES_MAX))
    try:
        return data.decode("utf-8")  # Python refuses overlong forms and surrogates
    except UnicodeDecodeError:
        raise VerifyError("%s is not valid UTF-8" % what) from None


class Vkey:
    """A C2SP Ed25519 verifier key "<name>+<key id hex>+<base64(0x01 || pk)>"."""

    def __init__(self, name, public_bytes):
        if not _name_valid(name):
            raise VerifyError("%r is not a key name" % name)
        if len(public_bytes) != 32:
            raise VerifyError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public_bytes = bytes(public_bytes)
        self.key_id = key_id(name, public_bytes)

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or len(text.encode("utf-8")) > NOTE_NAME_BYTES_MAX + 1 + 8 + 1 + 44:
            raise VerifyError("not a verifier key (NAME+KEYID+BASE64)")
        name, plus, rest = text.partition("+")
        id_hex, plus2, key_b64 = rest.partition("+")
        if not plus or not plus2 or not _HEX8.fullmatch(id_hex):
            raise VerifyError("not a verifier key (NAME+KEYID+BASE64): %r" % text)
        key = b64decode(key_b64, "the verifier key")
        if len(key) != 33 or key[:1] != _ALG_ED25519:
            raise VerifyError("the verifier key is not an Ed25519 key")
        vk = cls(name, key[1:])
        if vk.key_id.hex() != id_hex:
            raise VerifyError("the verifier key's id does not match its name and key")
        return vk

    def __str__(self):
        return "%s+%s+%s" % (self.name, self.key_id.hex(),
                             base64.b64encode(_ALG_ED25519 + self.public_bytes).decode("ascii"))


def key_id(name, public_bytes):
    """SHA-256(name || 0x0A || 0x01 || pubkey)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ALG_ED25519 + bytes(public_bytes)).digest()[:4]


def _as_vkey(vkey):
    return vkey if isinstance(vkey, Vkey) else Vkey.parse(vkey)


def verify_note(note, vkey):
    """Verifies a C2SP signed note against one key; returns its text (the
    part that is signed, final newline included).  Signature lines of other
    keys are ignored, as the spec requires (witness cosignatures); every
    line of this key must verify, and there must be one."""
    vkey = _as_vkey(vkey)
    text = _decode_text(note, "the note")
    if not _text_valid(text, True):
        raise VerifyError("the note holds a control character")
    cut = text.rfind("\n\n", 0, len(text) - 1)
    if not text.endswith("\n") or cut < 0:
        raise VerifyError("the note has no signature block (a blank line, then signature lines)")
    body, sigs = text[:cut + 1], text[cut + 2:-1].split("\n")
    if len(sigs) > NOTE_SIGS_MAX:
        raise VerifyError("the note has over %d signature lines" % NOTE_SIGS_MAX)
    good = bad = 0
    for line in sigs:
        name, sig = _parse_sig_line(line)
        if name != vkey.name or sig[:4] != vkey.key_id:
            continue  # another key's line
        if len(sig) == 68 and verify_signature(vkey.public_bytes, sig[4:], body.encode("utf-8")):
            good += 1
        else:
            bad += 1
    if good == 0 or bad:
        raise VerifyError("the note is not validly signed by %s" % vkey.name)
    return body


def _parse_sig_line(line):
    if not line.startswith(_SIG_PREFIX):
        raise VerifyError("malformed signature line %r" % line[:80])
    name, sp, b64 = line[len(_SIG_PREFIX):].partition(" ")
    if not sp or not _name_valid(name, limit=False) or not b64:
        raise VerifyError("malformed signature line %r" % line[:80])
    if len(b64) // 4 * 3 > NOTE_SIG_BYTES_MAX + 2:
        raise VerifyError("a signature line is over %d bytes" % NOTE_SIG_BYTES_MAX)
    sig = b64decode(b64, "a signature")
    if len(sig) <= 4 or len(sig) > NOTE_SIG_BYTES_MAX:
        raise VerifyError("malformed signature line %r" % line[:80])
    return name, sig


class Checkpoint:
    """A verified checkpoint: origin (the chain id), size and root (32 bytes)."""

    def __init__(self, origin, size, root, text):
        self.origin, self.size, self.root, self.text = origin, size, root, text

    def __repr__(self):
        return "Checkpoint(%s, size=%d, root=%s)" % (self.origin, self.size, self.root.hex())


def open_checkpoint(note, vkey):
    """Verifies a C2SP tlog-checkpoint signed note with the verifier key and
    returns the Checkpoint.  Its origin must be the key's name (the chain id):
    a checkpoint of another log signed by the same key must not pass."""
    vkey = _as_vkey(vkey)
    body = verify_note(note, vkey)
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or not _DECIMAL.fullmatch(lines[1]) or "" in lines[3:]:
        raise VerifyError("the checkpoint text is not origin, size, root and extension lines")
    size = int(lines[1])
    root = b64decode(lines[2], "the checkpoint root")
    if size >= 1 << 64 or len(root) != 32:
        raise VerifyError("the checkpoint's size or root is out of range")
    if lines[0] != vkey.name:
        raise VerifyError("the checkpoint's origin %r is not the key's name %r" % (lines[0], vkey.name))
    return Checkpoint(lines[0], size, root, note if isinstance(note, str) else note.decode("utf-8"))


def verify_checkpoint_extends(old, new, path):
    """Checks an RFC 9162 consistency proof between two verified Checkpoints
    (path: 32-byte hashes, or hex strings as ledger.consistency returns)."""
    path = [_hash(p) for p in path]
    if old.origin != new.origin:
        raise VerifyError("the checkpoints are of different logs")
    if not verify_consistency(old.size, new.size, old.root, new.root, path):
        raise VerifyError("the log at size %d does not extend the checkpoint at size %d (fork or rewrite)"
                          % (new.size, old.size))


def _hash(h):
    if isinstance(h, str):
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            raise VerifyError("a proof hash is not 64 lowercase hex")
        return bytes.fromhex(h)
    if len(h) != 32:
        raise VerifyError("a proof hash is not 32 bytes")
    return bytes(h)


# ---------------------------------------------------------------- receipts (tlog-proof files)

class ProvenEntry:
    """What a verified receipt file proves: entry `seq` (with its `time`,
    `txid`, `prev` and `sig`) is in the log of `checkpoint`."""

    def __init__(self, data, checkpoint):
        self.seq, self.time = struct.unpack(">QQ", data[16:32])
        self.prev = data[32:64].hex()
        self.txid = data[64:96].hex()
        self.sig = data[96:160].hex()
        self.hash = leaf_hash(data).hex()
        self.checkpoint = checkpoint

    def __repr__(self):
        return "ProvenEntry(seq=%d, txid=%s, size=%d)" % (self.seq, self.txid, self.checkpoint.size)


def format_proof(index, extra, path, checkpoint_note):
    """A C2SP tlog-proof text: the header, "extra <base64>", "index N", the
    path one base64 hash a line, a blank line, the signed checkpoint."""
    if not checkpoint_note.endswith("\n") or len(path) > MERKLE_PATH_MAX:
        raise ValueError("the checkpoint must end in a newline; at most %d path hashes" % MERKLE_PATH_MAX)
    lines = [PROOF_HEADER]
    if extra:
        lines.append("extra " + base64.b64encode(extra).decode("ascii"))
    lines.append("index %d" % index)
    lines.extend(base64.b64encode(_hash(h)).decode("ascii") for h in path)
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_proof(text):
    """Splits a tlog-proof: (index, extra bytes or None, path, checkpoint note)."""
    if isinstance(text, bytes):
        if len(text) > PROOF_BYTES_MAX:
            raise VerifyError("the proof is over %d bytes" % PROOF_BYTES_MAX)
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise VerifyError("the proof is not valid UTF-8") from None
    if len(text) > PROOF_BYTES_MAX:
        raise VerifyError("the proof is over %d bytes" % PROOF_BYTES_MAX)
    head, blank, note = text.partition("\n\n")
    lines = head.split("\n")
    if not blank or not note or lines[0] != PROOF_HEADER:
        raise VerifyError("not a c2sp.org/tlog-proof@v1 text")
    extra, i = None, 1
    if i < len(lines) and lines[i].startswith("extra "):
        extra = b64decode(lines[i][6:], "the extra data")
        i += 1
    if i >= len(lines) or not lines[i].startswith("index ") or not _DECIMAL.fullmatch(lines[i][6:]):
        raise VerifyError("the proof has no index line")
    index = int(lines[i][6:])
    path = [b64decode(h, "a path hash") for h in lines[i + 1:]]
    if len(path) > MERKLE_PATH_MAX or any(len(h) != 32 for h in path):
        raise VerifyError("the proof's path is not at most %d hashes of 32 bytes" % MERKLE_PATH_MAX)
    return index, extra, path, note


def verify_proof(text, vkey, tx=None):
    """Verifies a receipt file made by `tranchectl proof export` (or
    Client.export_proof) against the pinned verifier key, offline: the
    checkpoint's signature, the leaf hash of the entry bytes carried as extra
    data, and the inclusion path.  With `tx` (the tx bytes or text) also
    checks that the proven entry is that tx.  Returns a ProvenEntry."""
    vkey = _as_vkey(vkey)
    index, extra, path, note = parse_proof(text)
    if extra is None or len(extra) != ENTRY_BYTES_LEN or not extra.startswith(ENTRY_DOMAIN):
        raise VerifyError("not a tranche receipt: the extra data must be the %d entry bytes" % ENTRY_BYTES_LEN)
    seq = struct.unpack(">Q", extra[16:24])[0]
    if seq != index + 1:
        raise VerifyError("the entry's seq %d does not match the proof's index %d" % (seq, index))
    cp = open_checkpoint(note, vkey)
    if index >= cp.size or not verify_inclusion(index, cp.size, leaf_hash(extra), path, cp.root):
        raise VerifyError("the inclusion proof does not match the checkpoint root at size %d" % cp.size)
    proven = ProvenEntry(extra, cp)
    if tx is not None:
        tx_bytes = tx.encode("utf-8") if isinstance(tx, str) else bytes(tx)
        if hashlib.sha256(tx_bytes).hexdigest() != proven.txid:
            raise VerifyError("the proven entry is tx %s, not the given tx" % proven.txid)
    return proven
