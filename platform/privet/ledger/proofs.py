"""Inclusion proofs for many leaves at once, from a few batched reads of the stored tree.

``privet_audit.merkle.inclusion_proof`` walks a ``node(level, index)`` source; fed by
``storage.node_reader`` each node is one database round trip, so a report citing n
events cost O(n log n) round trips. ``BatchedNodes`` is the same ``node`` source served
from memory: the proof logic is run once with a recording source to learn which nodes a
chunk of proofs needs (the audit paths of neighbouring leaves share most of them), those
are read in one statement per table, and the proofs are then built in memory. Nodes high
in the tree (shared by every proof) stay cached across chunks; the rest are dropped, so
memory stays bounded by the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from sqlalchemy import Connection, and_, or_, select

from privet.ledger.integrate import LedgerIntegrityError
from privet.ledger.tables import LedgerLeaf, LedgerNode
from privet_audit.merkle import EMPTY_ROOT, HASH_SIZE, NodeFn, inclusion_proof, subtree_hash

__all__ = ["PROOF_CHUNK", "BatchedNodes", "inclusion_proofs", "keys_read", "tree_root"]

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]

#: Proofs planned and read together (bounds the nodes held at once).
PROOF_CHUNK = 1000
#: Most keys in one statement (well under SQLite's and PostgreSQL's parameter limits).
_MAX_KEYS = 4000
#: Nodes at or above this level are kept across chunks: few, and on every path.
_KEEP_LEVEL = 8
_PLACEHOLDER = b"\x00" * HASH_SIZE

Key = tuple[int, int]
T = TypeVar("T")


class BatchedNodes:
    """``node(level, index)`` over the stored tree, from nodes read in batches."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._cache: dict[Key, bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        value = self._cache.get((level, index))
        if value is None:
            self.prefetch([(level, index)])
            value = self._cache.get((level, index))
            if value is None:
                raise LedgerIntegrityError(f"tree node (level {level}, index {index}) is missing")
        return value

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Read the keys not cached yet: leaves and interior nodes, one statement each
        (more only past ``_MAX_KEYS``)."""
        missing = sorted({k for k in keys if k not in self._cache})
        leaves = [k[1] for k in missing if k[0] == 0]
        nodes = [k for k in missing if k[0] > 0]
        for idxs in _batches(leaves):
            found = self.conn.execute(
                select(_leaves.c.idx, _leaves.c.leaf_hash).where(_leaves.c.idx.in_(idxs))
            )
            self._cache.update(((0, int(i)), bytes(h)) for i, h in found)
        for part in _batches(nodes):
            by_level: dict[int, list[int]] = {}
            for key in part:
                by_level.setdefault(key[0], []).append(key[1])
            cond = or_(
                *(and_(_nodes.c.level == lv, _nodes.c.idx.in_(ix)) for lv, ix in by_level.items())
            )
            rows = self.conn.execute(
                select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(cond)
            )
            self._cache.update(((int(lv), int(i)), bytes(h)) for lv, i, h in rows)

    def trim(self) -> None:
        """Forget the low nodes (kept: those high enough to be on most paths)."""
        self._cache = {k: v for k, v in self._cache.items() if k[0] >= _KEEP_LEVEL}


def _batches(keys: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(keys), _MAX_KEYS):
        yield keys[start : start + _MAX_KEYS]


def keys_read(walk: Callable[[NodeFn], object]) -> list[Key]:
    """The nodes ``walk`` reads from its node source: the proof logic of
    privet_audit.merkle itself, run on a recording source (one implementation)."""
    keys: list[Key] = []

    def record(level: int, idx: int) -> bytes:
        keys.append((level, idx))
        return _PLACEHOLDER

    walk(record)
    return keys


def _path_keys(index: int, size: int) -> list[Key]:
    return keys_read(lambda node: inclusion_proof(index, size, node))


def inclusion_proofs(
    conn: Connection,
    indexes: Iterable[int],
    size: int,
    *,
    chunk: int = PROOF_CHUNK,
    nodes: BatchedNodes | None = None,
) -> Iterator[tuple[int, list[bytes]]]:
    """(index, audit path) for each of ``indexes`` in the tree of ``size``, in the order
    given; a few statements per ``chunk`` proofs instead of O(log n) per proof (pass
    ``nodes`` to keep the high nodes cached across calls)."""
    nodes = nodes or BatchedNodes(conn)
    it = iter(indexes)
    while batch := list(islice(it, chunk)):
        for index in batch:
            if not 0 <= index < size:
                raise ValueError(f"leaf index {index} is outside the tree of size {size}")
        nodes.prefetch(k for index in batch for k in _path_keys(index, size))
        for index in batch:
            yield index, inclusion_proof(index, size, nodes)
        nodes.trim()


def tree_root(nodes: BatchedNodes, size: int) -> bytes:
    """Root of the stored tree of ``size`` leaves (its O(log n) border nodes in one read)."""
    if size == 0:
        return EMPTY_ROOT
    nodes.prefetch(keys_read(lambda node: subtree_hash(0, size, node)))
    return subtree_hash(0, size, nodes)
