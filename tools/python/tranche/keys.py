"""Ed25519 keys and key files (PROTOCOL.md §1).

A key file holds the 32-byte seed as 64 lowercase hex characters and "\\n",
mode 0600 — the format `tranchectl keygen` and `tranchectl init --admin-out`
write.  As there, saving never overwrites a file, and loading refuses a file
that others may read.  PyNaCl wraps libsodium, so signatures and checks are
exactly the node's.
"""
import os
import re
import stat

import nacl.bindings
import nacl.exceptions
import nacl.signing

from .errors import KeyFileError
from .limits import KEY_FILE_BYTES_MAX

_KEY_FILE = re.compile(rb"[0-9a-f]{64}\n")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")


class Key:
    """An Ed25519 signing key: `public` is the account id (64 lowercase hex)."""

    def __init__(self, seed):
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        self.seed = bytes(seed)
        self._sk = nacl.signing.SigningKey(self.seed)
        self.public_bytes = bytes(self._sk.verify_key)
        self.public = self.public_bytes.hex()

    @classmethod
    def generate(cls):
        return cls(os.urandom(32))

    @classmethod
    def load(cls, path):
        """Reads a key file; refuses one others may read (as tranchectl does)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise KeyFileError("cannot open key file %s: %s" % (path, e.strerror)) from None
        try:
            mode = os.fstat(fd).st_mode
            data = os.read(fd, KEY_FILE_BYTES_MAX)
        finally:
            os.close(fd)
        if mode & 0o077:
            raise KeyFileError("key file %s is readable by others (mode %03o); chmod 600 it"
                               % (path, stat.S_IMODE(mode)))
        if not _KEY_FILE.fullmatch(data):
            raise KeyFileError("key file %s must hold 64 lowercase hex characters and a newline" % path)
        return cls(bytes.fromhex(data[:64].decode("ascii")))

    def save(self, path):
        """Writes a new key file, mode 0600, durably; never overwrites one."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            raise KeyFileError("key file %s already exists; a key is never overwritten" % path) from None
        except OSError as e:
            raise KeyFileError("cannot create key file %s: %s" % (path, e.strerror)) from None
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (self.seed.hex() + "\n").encode("ascii"))
            os.fsync(fd)
        except OSError as e:
            os.close(fd)
            os.unlink(path)
            raise KeyFileError("cannot write key file %s: %s" % (path, e.strerror)) from None
        os.close(fd)
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)  # the new name survives a crash too
        finally:
            os.close(dfd)
        return self

    def sign(self, message):
        """Detached Ed25519 signature (64 bytes) of message."""
        return self._sk.sign(bytes(message)).signature

    def __repr__(self):
        return "Key(%s...)" % self.public[:12]


def is_public_key(text):
    """True when text is an account id the node accepts: 64 lowercase hex of
    a point in the prime-order subgroup (PROTOCOL.md §1)."""
    return (isinstance(text, str) and _HEX64.fullmatch(text) is not None
            and nacl.bindings.crypto_core_ed25519_is_valid_point(bytes.fromhex(text)))


def verify_signature(public, signature, message):
    """libsodium's crypto_sign_verify_detached, as the node: True or False.
    public: 32 bytes or 64 hex; signature: 64 bytes or 128 hex."""
    try:
        if any(isinstance(x, str) and not _LOWER_HEX.fullmatch(x) for x in (public, signature)):
            return False  # PROTOCOL.md §1: uppercase or odd-length hex is invalid
        pk = bytes.fromhex(public) if isinstance(public, str) else bytes(public)
        sig = bytes.fromhex(signature) if isinstance(signature, str) else bytes(signature)
        if len(pk) != 32 or len(sig) != 64:
            return False
        nacl.signing.VerifyKey(pk).verify(bytes(message), sig)
        return True
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
