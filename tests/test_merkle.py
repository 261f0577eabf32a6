"""RFC 9162 Merkle trees: published vectors, and proofs generated here checked both ways."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore.canonical import leaf_hash
from eventstore.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    root_from_inclusion,
    root_of,
    subtree_from_leaves,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "transparency-dev-merkle"

# The reference tree of transparency-dev/merkle (testonly/constants.go): 8 leaf inputs and the
# root of every prefix, the same as RFC 6962's reference implementation uses.
LEAF_INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]


def _b64(value):
    return base64.b64decode(value) if value else b""


def _cases(kind: str):
    cases = json.loads((VECTORS / f"{kind}.json").read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["file"].split("testdata/")[1]) for case in cases]


def test_roots_of_every_prefix_of_the_reference_tree():
    assert EMPTY_ROOT == ROOTS[0]
    for size in range(len(LEAVES) + 1):
        assert root_of(LEAVES[:size]) == ROOTS[size], size


def test_compact_range_gives_the_root_of_every_prefix_on_the_way():
    compact = CompactRange()
    for size, leaf in enumerate(LEAVES, start=1):
        compact.append(leaf)
        assert compact.root() == ROOTS[size]


@pytest.mark.parametrize("case", _cases("inclusion"))
def test_published_inclusion_vectors(case):
    proof = [_b64(h) for h in case["proof"] or []]
    arguments = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof,
                 _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*arguments)
    else:
        verify_inclusion(*arguments)


@pytest.mark.parametrize("case", _cases("consistency"))
def test_published_consistency_vectors(case):
    proof = [_b64(h) for h in case["proof"] or []]
    arguments = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*arguments)
    else:
        verify_consistency(*arguments)


def test_generated_proofs_match_the_published_happy_paths():
    subtree = subtree_from_leaves(LEAVES)
    happy = {(c.values[0]["leafIdx"], c.values[0]["treeSize"]): c.values[0]
             for c in _cases("inclusion")
             if c.values[0]["desc"] == "happy path" and c.values[0]["treeSize"] <= 8}
    assert happy
    for (index, size), case in happy.items():
        expected = [_b64(h) for h in case["proof"] or []]
        assert inclusion_proof(index, size, subtree) == expected
    happy = [c.values[0] for c in _cases("consistency") if c.values[0]["desc"] == "happy path"
             and 0 < c.values[0]["size1"] and c.values[0]["size2"] <= 8]
    assert happy
    for case in happy:
        expected = [_b64(h) for h in case["proof"] or []]
        assert consistency_proof(case["size1"], case["size2"], subtree) == expected


@given(st.integers(1, 300), st.data())
def test_every_generated_proof_verifies_and_a_changed_leaf_does_not(size, data):
    leaves = [leaf_hash(str(i).encode()) for i in range(size)]
    subtree = subtree_from_leaves(leaves)
    root = root_of(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, subtree)
    verify_inclusion(index, size, leaves[index], proof, root)
    assert root_from_inclusion(index, size, leaves[index], proof) == root
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf_hash(b"forged"), proof, root)
    old = data.draw(st.integers(1, size))
    consistency = consistency_proof(old, size, subtree)
    verify_consistency(old, size, consistency, root_of(leaves[:old]), root)
    if old < size:
        with pytest.raises(ProofError):
            verify_consistency(old, size, consistency, leaf_hash(b"other past"), root)
