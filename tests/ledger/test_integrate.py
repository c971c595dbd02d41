"""``integrate`` on an in-memory storage: the roots and nodes it computes, batch by batch,
are the published RFC 6962 vectors (transparency-dev/merkle's testonly constants) and
privet_audit's Merkle roots; a storage that disagrees with itself is refused."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from privet.ledger.integrate import (
    Integrated,
    LedgerIntegrityError,
    PendingEntry,
    TreeState,
    integrate,
)
from privet_audit.merkle import EMPTY_ROOT, CompactRange, Node, leaf_hash, root_hash
from tests.audit.test_merkle_vectors import LEAVES, NODE_HASHES, ROOTS


class MemoryStorage:
    """A TreeStorage in dicts; the test records the tree state, as the sequencer does."""

    def __init__(self) -> None:
        self.state = TreeState(0, EMPTY_ROOT)
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.entries: dict[int, PendingEntry] = {}

    def tree_state(self) -> TreeState:
        return self.state

    def node(self, level: int, index: int) -> bytes:
        try:
            return self.nodes[(level, index)]
        except KeyError:
            raise LedgerIntegrityError(f"node ({level}, {index}) is missing") from None

    def write_leaves(
        self, start: int, entries: Sequence[PendingEntry], hashes: Sequence[bytes]
    ) -> None:
        assert len(entries) == len(hashes)
        for i, (entry, h) in enumerate(zip(entries, hashes, strict=True)):
            assert (0, start + i) not in self.nodes, "a leaf index written twice"
            self.nodes[(0, start + i)] = h
            self.entries[start + i] = entry

    def write_nodes(self, nodes: Sequence[Node]) -> None:
        for n in nodes:
            assert n.level >= 1 and (n.level, n.index) not in self.nodes
            self.nodes[(n.level, n.index)] = n.hash

    def commit(self, tree: Integrated) -> None:
        self.state = TreeState(tree.size, tree.root)


def _entries(data: Sequence[bytes], first: int = 0) -> list[PendingEntry]:
    return [(100 + first + i, d, None) for i, d in enumerate(data)]


def _run(storage: MemoryStorage, data: Sequence[bytes], splits: Sequence[int]) -> list[bytes]:
    """Integrate ``data`` in batches of ``splits``; the root after each batch."""
    roots, done, known = [], 0, None
    for n in splits:
        tree = integrate(storage, _entries(data[done : done + n], done), known=known)
        done += n
        assert tree.size == done
        storage.commit(tree)
        roots.append(tree.root)
        known = tree
    assert done == len(data)
    return roots


SPLITS_8 = [[1] * 8, [8], [3, 5], [2, 2, 4], [5, 1, 2], [7, 1], [1, 6, 1], [4, 4]]


@pytest.mark.parametrize("splits", SPLITS_8, ids=str)
def test_published_roots_and_nodes(splits: list[int]) -> None:
    storage = MemoryStorage()
    roots = _run(storage, LEAVES, splits)
    sizes = [sum(splits[: k + 1]) for k in range(len(splits))]
    assert roots == [ROOTS[s] for s in sizes]
    # every perfect-subtree node of the tree of 8, level 0 (leaf hashes) up to the root
    assert storage.nodes == {
        (level, i): h for level, hashes in enumerate(NODE_HASHES) for i, h in enumerate(hashes)
    }
    assert [storage.entries[i][1] for i in range(8)] == LEAVES


def test_every_size_matches_privet_audit() -> None:
    data = [f"entry {i}".encode() for i in range(130)]
    hashes = [leaf_hash(d) for d in data]
    storage = MemoryStorage()
    roots = _run(storage, data, [1] * len(data))
    assert roots == [root_hash(hashes[:n]) for n in range(1, len(data) + 1)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("reuse", [True, False])
def test_batch_splits_give_the_same_tree(seed: int, reuse: bool) -> None:
    rnd = random.Random(seed)
    data = [rnd.randbytes(rnd.randrange(0, 40)) for _ in range(rnd.randrange(50, 300))]
    splits: list[int] = []
    while sum(splits) < len(data):
        splits.append(min(rnd.choice([1, 2, 3, 7, 16, 33, 64]), len(data) - sum(splits)))
    storage = MemoryStorage()
    done, roots = 0, []
    for n in splits:
        known = None
        if reuse and done:
            known = Integrated(range=_border_of(storage), root=storage.state.root)
        tree = integrate(storage, _entries(data[done : done + n], done), known=known)
        storage.commit(tree)
        done += n
        roots.append(tree.root)
    hashes = [leaf_hash(d) for d in data]
    assert roots == [root_hash(hashes[: sum(splits[: k + 1])]) for k in range(len(splits))]
    one_batch = MemoryStorage()
    _run(one_batch, data, [len(data)])
    assert one_batch.nodes == storage.nodes


def _border_of(storage: MemoryStorage) -> CompactRange:
    return CompactRange.from_nodes(storage.state.size, storage.node)


def test_empty_batch_writes_nothing() -> None:
    storage = MemoryStorage()
    _run(storage, LEAVES[:5], [5])
    before = dict(storage.nodes)
    tree = integrate(storage, [])
    assert (tree.size, tree.root, tree.written) == (5, ROOTS[5], {})
    assert storage.nodes == before


def test_written_nodes_are_the_new_ones() -> None:
    storage = MemoryStorage()
    _run(storage, LEAVES[:3], [3])
    before = set(storage.nodes)
    tree = integrate(storage, _entries(LEAVES[3:8], 3))
    assert set(tree.written) == set(storage.nodes) - before
    node = tree.reader(storage)
    assert node(3, 0) == ROOTS[8] and node(0, 0) == NODE_HASHES[0][0]


def test_storage_whose_size_disagrees_is_refused() -> None:
    """The tree state says 5 leaves, the storage holds only 3: nothing is written."""
    storage = MemoryStorage()
    _run(storage, LEAVES[:3], [3])
    storage.state = TreeState(5, ROOTS[5])
    before = dict(storage.nodes)
    with pytest.raises(LedgerIntegrityError, match="missing"):
        integrate(storage, _entries(LEAVES[5:7], 5))
    assert storage.nodes == before


def test_storage_whose_root_disagrees_is_refused() -> None:
    """The stored nodes give another root than the tree state says (a node altered, or
    the state rolled back to a size the nodes do not end at)."""
    storage = MemoryStorage()
    _run(storage, LEAVES[:6], [6])
    storage.state = TreeState(4, ROOTS[6])
    with pytest.raises(LedgerIntegrityError, match="tree state says"):
        integrate(storage, _entries(LEAVES[6:], 6))
    storage.state = TreeState(6, ROOTS[6])
    storage.nodes[(1, 2)] = bytes(32)
    with pytest.raises(LedgerIntegrityError, match="tree state says"):
        integrate(storage, _entries(LEAVES[6:], 6))


def test_a_stale_known_tree_is_not_trusted() -> None:
    """A remembered tree of the same size but another root (another process's log, or
    a rolled-back pass) is ignored: the border is read from the storage."""
    storage = MemoryStorage()
    _run(storage, LEAVES[:4], [4])
    other = MemoryStorage()
    stale = _run(other, [b"x", b"y", b"z", b"w"], [4])
    assert stale[-1] != ROOTS[4]
    known = integrate(other, [])
    tree = integrate(storage, _entries(LEAVES[4:], 4), known=known)
    assert tree.root == ROOTS[8]
