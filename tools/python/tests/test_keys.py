"""Key files: the contract's format (64 lowercase hex and a newline, mode
0600), read and written interchangeably with tranchectl."""
import os
import stat
import subprocess

import pytest

import tranche


def test_save_load_round_trip_mode_0600(tmp_path):
    old = os.umask(0)  # a lax umask must not make a lax key file
    try:
        k = tranche.Key.generate().save(str(tmp_path / "a.key"))
    finally:
        os.umask(old)
    st = os.stat(tmp_path / "a.key")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (tmp_path / "a.key").read_bytes() == (k.seed.hex() + "\n").encode()
    assert tranche.Key.load(str(tmp_path / "a.key")).public == k.public


def test_save_never_overwrites(tmp_path):
    p = str(tmp_path / "a.key")
    first = tranche.Key.generate().save(p)
    with pytest.raises(tranche.KeyFileError, match="already exists"):
        tranche.Key.generate().save(p)
    assert tranche.Key.load(p).public == first.public


@pytest.mark.parametrize("content, mode, words", [
    (b"ab" * 32 + b"\n", 0o644, "readable by others"),
    (b"AB" * 32 + b"\n", 0o600, "64 lowercase hex"),
    (b"ab" * 32, 0o600, "64 lowercase hex"),
    (b"ab" * 32 + b"\n\n", 0o600, "64 lowercase hex"),
    (b"ab" * 31 + b"\n", 0o600, "64 lowercase hex"),
    (b"", 0o600, "64 lowercase hex"),
])
def test_load_refuses(tmp_path, content, mode, words):
    p = tmp_path / "bad.key"
    p.write_bytes(content)
    os.chmod(p, mode)
    with pytest.raises(tranche.KeyFileError, match=words):
        tranche.Key.load(str(p))


def test_load_missing(tmp_path):
    with pytest.raises(tranche.KeyFileError, match="cannot open"):
        tranche.Key.load(str(tmp_path / "none.key"))


def test_interchangeable_with_tranchectl(tmp_path, tranchectl):
    r = subprocess.run([tranchectl, "keygen", "--out", str(tmp_path / "c.key")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tranche.Key.load(str(tmp_path / "c.key")).public == r.stdout.strip()
    mine = tranche.Key.generate().save(str(tmp_path / "py.key"))
    r = subprocess.run([tranchectl, "sign", "--key", str(tmp_path / "py.key"), "--tx", '{"x":1}'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tranche.SignedTx.from_json(r.stdout).sig == tranche.sign(b'{"x":1}', mine)


def test_public_key_validity():
    k = tranche.Key.generate()
    assert tranche.is_public_key(k.public)
    assert not tranche.is_public_key(k.public.upper())
    assert not tranche.is_public_key("00" * 32)           # small order (the identity's encoding is 01 00..)
    assert not tranche.is_public_key("01" + "00" * 31)    # the identity point
    assert not tranche.is_public_key(k.public[:-2])
    sig = k.sign(b"m").hex()
    assert tranche.verify_signature(k.public, sig, b"m")
    assert not tranche.verify_signature(k.public.upper(), sig, b"m")
    assert not tranche.verify_signature(k.public, sig.upper(), b"m")
    assert not tranche.verify_signature(k.public, sig, b"n")
