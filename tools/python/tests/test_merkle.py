"""RFC 9162 inclusion and consistency proofs, checked against proofs built
here from the RFC's recursive definitions for every size up to 40."""
import hashlib

from tranche import merkle_root, verify_consistency, verify_inclusion
from tranche.verify import _split

N = 40
LEAVES = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(N)]


def path(m, leaves):
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return path(m, leaves[:k]) + [merkle_root(leaves[k:])]
    return path(m - k, leaves[k:]) + [merkle_root(leaves[:k])]


def subproof(m, leaves, b=True):
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if b else [merkle_root(leaves)]
    k = _split(n)
    if m <= k:
        return subproof(m, leaves[:k], b) + [merkle_root(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [merkle_root(leaves[:k])]


def test_inclusion_every_leaf_every_size():
    for n in range(1, N + 1):
        root = merkle_root(LEAVES[:n])
        for m in range(n):
            p = path(m, LEAVES[:n])
            assert verify_inclusion(m, n, LEAVES[m], p, root)
            assert not verify_inclusion(m, n, LEAVES[(m + 1) % N], p, root)
            if p:
                assert not verify_inclusion(m, n, LEAVES[m], p[:-1], root)
                assert not verify_inclusion(m, n, LEAVES[m], p + [root], root)
        assert not verify_inclusion(n, n, LEAVES[0], [], root)  # index outside the tree


def test_consistency_every_pair():
    for n in range(1, N + 1):
        new = merkle_root(LEAVES[:n])
        for m in range(1, n + 1):
            old = merkle_root(LEAVES[:m])
            p = subproof(m, LEAVES[:n])
            assert verify_consistency(m, n, old, new, p), (m, n)
            if m < n:
                assert not verify_consistency(m, n, new, new, p), (m, n)   # a rewritten old tree
                assert not verify_consistency(m, n, old, old, p), (m, n)   # a forked new tree
                assert not verify_consistency(m, n, old, new, p[:-1]), (m, n)
    assert not verify_consistency(0, 3, b"", merkle_root(LEAVES[:3]), [LEAVES[0]])
    assert not verify_consistency(4, 3, merkle_root(LEAVES[:4]), merkle_root(LEAVES[:3]), [LEAVES[0]])
