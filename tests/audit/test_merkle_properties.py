"""Property tests: proofs generated from stored nodes always verify, and tampering fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privet_audit.merkle import (
    CompactRange,
    ConsistencyError,
    InclusionError,
    MemoryTree,
    NodeFn,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_proof,
    inclusion_proof_keys,
    inclusion_proofs,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def reference_root(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH, written recursively exactly as the RFC states it."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(
        b"\x01" + reference_root(hashes[:k]) + reference_root(hashes[k:])
    ).digest()


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), cuts=st.lists(st.integers(1, 40), max_size=20))
def test_root_and_compact_range_match_the_rfc_definition(n: int, cuts: list[int]) -> None:
    hs = leaves(n)
    assert root_hash(hs) == reference_root(hs)
    cr = CompactRange()
    stored: dict[tuple[int, int], bytes] = {(0, i): h for i, h in enumerate(hs)}
    pos = 0
    for c in [*cuts, n]:
        nodes = cr.extend(hs[pos : pos + c])
        stored.update({(x.level, x.index): x.hash for x in nodes})
        pos = min(n, pos + c)
        assert cr.root() == reference_root(hs[:pos])
    tree = MemoryTree(hs)
    for (level, index), value in stored.items():
        assert tree.node(level, index) == value
    assert CompactRange.from_nodes(n, lambda lv, i: stored[(lv, i)]).root() == tree.root()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 200))
def test_inclusion_generation_and_verification_agree(data: st.DataObject, n: int) -> None:
    hs = leaves(n)
    tree = MemoryTree(hs)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = reference_root(hs[:size])
    proof = inclusion_proof(index, size, tree.node)
    verify_inclusion(hs[index], index, size, proof, root)
    if size > 1:
        with pytest.raises(InclusionError):
            verify_inclusion(hs[index], (index + 1) % size, size, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(InclusionError):
            verify_inclusion(hs[index], index, size, bad, root)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), n=st.integers(1, 200))
def test_consistency_generation_and_verification_agree(data: st.DataObject, n: int) -> None:
    hs = leaves(n)
    tree = MemoryTree(hs)
    size2 = data.draw(st.integers(0, n))
    size1 = data.draw(st.integers(0, size2))
    r1, r2 = reference_root(hs[:size1]), reference_root(hs[:size2])
    proof = consistency_proof(size1, size2, tree.node)
    verify_consistency(size1, size2, proof, r1, r2)
    # The proof's right-hand elements cover exactly [size1, size2).
    ranges = consistency_proof_ranges(size1, size2)
    assert len(ranges) == len(proof)
    right = sorted(r for r in ranges if r[0] >= size1)
    covered = [i for lo, hi in right for i in range(lo, hi)]
    assert covered == list(range(size1, size2)) or not proof
    for (lo, hi), p in zip(ranges, proof, strict=True):
        assert reference_root(hs[lo:hi]) == p
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        with pytest.raises(ConsistencyError):
            verify_consistency(size1, size2, bad, r1, r2)
        if size1 != size2:
            with pytest.raises(ConsistencyError):
                verify_consistency(size1, size2, proof, r2, r1)


def _recording(tree: MemoryTree, seen: set[tuple[int, int]]) -> NodeFn:
    def node(level: int, index: int) -> bytes:
        seen.add((level, index))
        return tree.node(level, index)

    return node


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 600))
def test_batch_proofs_equal_inclusion_proof_for_every_leaf(n: int) -> None:
    """``inclusion_proofs`` over all leaves in order equals ``inclusion_proof`` of each,
    and reads exactly the nodes ``inclusion_proof_keys`` names (sizes mostly not powers
    of two)."""
    tree = MemoryTree(leaves(n))
    seen: set[tuple[int, int]] = set()
    got = list(inclusion_proofs(range(n), n, _recording(tree, seen)))
    assert got == [inclusion_proof(i, n, tree.node) for i in range(n)]
    assert seen == inclusion_proof_keys(range(n), n)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 255, 256, 257])
def test_batch_proofs_at_and_around_powers_of_two(n: int) -> None:
    tree = MemoryTree(leaves(n))
    for size in {n, max(1, n - 1)}:
        got = list(inclusion_proofs(range(size), size, tree.node))
        assert got == [inclusion_proof(i, size, tree.node) for i in range(size)]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 400))
def test_batch_proofs_of_any_leaves_in_any_order(data: st.DataObject, n: int) -> None:
    """Sparse, repeated and unordered leaves (and a tree smaller than the stored one)."""
    size = data.draw(st.integers(1, n))
    picks = data.draw(st.lists(st.integers(0, size - 1), max_size=60))
    if data.draw(st.booleans()):
        picks.sort()
    tree = MemoryTree(leaves(n))
    seen: set[tuple[int, int]] = set()
    got = list(inclusion_proofs(picks, size, _recording(tree, seen)))
    assert got == [inclusion_proof(i, size, tree.node) for i in picks]
    assert seen == inclusion_proof_keys(picks, size)
    for i, proof in zip(picks, got, strict=True):
        verify_inclusion(tree.node(0, i), i, size, proof, tree.root(size))


def test_batch_proofs_refuse_a_leaf_outside_the_tree() -> None:
    tree = MemoryTree(leaves(5))
    with pytest.raises(ValueError, match="outside the tree"):
        list(inclusion_proofs([0, 5], 5, tree.node))
    with pytest.raises(ValueError, match="outside the tree"):
        inclusion_proof_keys([-1], 5)
