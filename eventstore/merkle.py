"""Merkle trees of RFC 9162 (Certificate Transparency 2.0, same hashing as RFC 6962).

Pure functions over leaf hashes (``SHA-256(0x00 || entry)``, computed by
``eventstore.canonical``). Interior nodes are ``SHA-256(0x01 || left || right)``;
the root of the empty tree is ``SHA-256("")``. Proofs follow RFC 9162 §2.1.3
(inclusion) and §2.1.4 (consistency); verification follows the algorithms of
§2.1.3.2 and §2.1.4.2 word for word. Tested against the published vectors of
transparency-dev/merkle (tests/vectors/).

Proof generation takes ``subtree(lo, hi)``, a function giving the hash of the
leaves ``[lo, hi)``; stores answer it from cached nodes (``eventstore.tree``),
tests from a list of leaves (:func:`subtree_from_leaves`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Subtree = Callable[[int, int], bytes]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes."""
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()


def subtree_from_leaves(leaves: Sequence[bytes]) -> Subtree:
    """A ``subtree(lo, hi)`` function over an in-memory list of leaf hashes."""
    def subtree(lo: int, hi: int) -> bytes:
        return root_of(leaves[lo:hi])

    return subtree


class CompactRange:
    """The right edge of a growing tree: one hash per perfect subtree, largest first.

    Appending a leaf merges equal-sized subtrees, so a whole log is hashed in one
    pass with O(log n) memory, and the root of every prefix is available on the way.
    """

    __slots__ = ("size", "_nodes")

    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        nodes = self._nodes
        nodes.append(leaf)
        size = self.size
        while size & 1:
            right = nodes.pop()
            nodes[-1] = node_hash(nodes[-1], right)
            size >>= 1
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        nodes = self._nodes
        root = nodes[-1]
        for node in reversed(nodes[:-1]):
            root = node_hash(node, root)
        return root


# Proof generation (RFC 9162 §2.1.3.1 and §2.1.4.1) -------------------------------------------

def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``index`` in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    return _path(index, 0, size, subtree)


def _path(m: int, lo: int, hi: int, subtree: Subtree) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return _path(m, lo, lo + k, subtree) + [subtree(lo + k, hi)]
    return _path(m - k, lo + k, hi, subtree) + [subtree(lo, lo + k)]


def consistency_proof(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """PROOF(m, D[n]): shows the tree of ``new_size`` leaves extends the one of ``old_size``."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        return []
    return _subproof(old_size, 0, new_size, True, subtree)


def _subproof(m: int, lo: int, hi: int, complete: bool, subtree: Subtree) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if complete else [subtree(lo, hi)]
    k = split_point(n)
    if m <= k:
        return _subproof(m, lo, lo + k, complete, subtree) + [subtree(lo + k, hi)]
    return _subproof(m - k, lo + k, hi, False, subtree) + [subtree(lo, lo + k)]


# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------------------

def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a valid inclusion proof leads to; :class:`ProofError` if it is malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    _check_hashes([leaf, *proof])
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree requires")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf ``index`` is in the tree ``root``."""
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError("the inclusion proof does not lead to the checkpoint's root hash")


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the new tree extends the old one."""
    _check_hashes(proof)
    if old_size > new_size:
        raise ProofError(f"the old tree ({old_size}) is larger than the new one ({new_size})")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of the same size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError("trees of the same size have different roots")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees require")
    if fr != old_root:
        raise ProofError("the consistency proof does not lead to the old root hash")
    if sr != new_root:
        raise ProofError("the consistency proof does not lead to the new root hash")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for node in proof:
        if not isinstance(node, bytes) or len(node) != 32:
            raise ProofError("a proof node is not a 32-byte SHA-256 hash")
