"""Inclusion proofs for many leaves at once, from a few batched reads of the stored tree.

``privet_audit.merkle.inclusion_proof`` walks a ``node(level, index)`` source; fed by
``storage.node_reader`` each node is one database round trip, so a report citing n
events cost O(n log n) round trips. ``BatchedNodes`` is the same ``node`` source served
from memory: ``privet_audit.merkle.inclusion_proof_keys`` names the nodes a chunk of
proofs needs (the audit paths of neighbouring leaves share most of them), those are read
in one statement per table, and ``privet_audit.merkle.inclusion_proofs`` builds the
chunk's proofs in memory, in one walk shared by its leaves. Nodes high
in the tree (shared by every proof) stay cached across chunks; the rest are dropped, so
memory stays bounded by the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from privet.ledger.integrate import LedgerIntegrityError
from privet.ledger.tables import LedgerLeaf, LedgerNode
from privet_audit import merkle
from privet_audit.merkle import EMPTY_ROOT, HASH_SIZE, NodeFn, subtree_hash

__all__ = ["PROOF_CHUNK", "BatchedNodes", "inclusion_proofs", "keys_read", "tree_root"]

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]

#: Proofs planned and read together (bounds the nodes held at once).
PROOF_CHUNK = 1000
#: Most keys in one statement (well under SQLite's and PostgreSQL's parameter limits).
_MAX_KEYS = 4000
#: Neighbouring keys at most this far apart are read as one range.
_GAP = 2
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
        (more only past ``_MAX_KEYS``); a run of neighbouring keys on a level is read as
        one range."""
        missing = sorted({k for k in keys if k not in self._cache})
        leaves = [k for k in missing if k[0] == 0]
        nodes = [k for k in missing if k[0] > 0]
        for part in _batches(leaves):
            idx = _leaves.c.idx
            found = self.conn.execute(
                select(idx, _leaves.c.leaf_hash).where(_near(idx, [k[1] for k in part]))
            )
            self._cache.update(((0, int(i)), bytes(h)) for i, h in found)
        for part in _batches(nodes):
            by_level: dict[int, list[int]] = {}
            for key in part:
                by_level.setdefault(key[0], []).append(key[1])
            cond = or_(
                *(
                    and_(_nodes.c.level == lv, _near(_nodes.c.idx, ix))
                    for lv, ix in by_level.items()
                )
            )
            rows = self.conn.execute(
                select(_nodes.c.level, _nodes.c.idx, _nodes.c.hash).where(cond)
            )
            self._cache.update(((int(lv), int(i)), bytes(h)) for lv, i, h in rows)

    def trim(self) -> None:
        """Forget the low nodes (kept: those high enough to be on most paths)."""
        self._cache = {k: v for k, v in self._cache.items() if k[0] >= _KEEP_LEVEL}


def _near(column: Any, idxs: list[int]) -> ColumnElement[bool]:
    """``column`` in the sorted ``idxs``: runs of neighbours (gaps of at most
    ``_GAP``) as ranges, the rest as a list (few parameters for a run of leaves)."""
    runs: list[tuple[int, int]] = []
    single: list[int] = []
    start = 0
    for i in range(1, len(idxs) + 1):
        if i == len(idxs) or idxs[i] - idxs[i - 1] > _GAP:
            if i - start > 2:
                runs.append((idxs[start], idxs[i - 1]))
            else:
                single.extend(idxs[start:i])
            start = i
    conds = [column.between(a, b) for a, b in runs]
    if single:
        conds.append(column.in_(single))
    return or_(*conds)


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


def inclusion_proofs(
    conn: Connection,
    indexes: Iterable[int],
    size: int,
    *,
    chunk: int = PROOF_CHUNK,
    nodes: BatchedNodes | None = None,
) -> Iterator[tuple[int, list[bytes]]]:
    """(index, audit path) for each of ``indexes`` in the tree of ``size``, in the order
    given (increasing is cheapest: neighbouring leaves share their walk); a few
    statements per ``chunk`` proofs instead of O(log n) per proof (pass ``nodes`` to keep
    the high nodes cached across calls)."""
    nodes = nodes or BatchedNodes(conn)
    it = iter(indexes)
    while batch := list(islice(it, chunk)):
        nodes.prefetch(merkle.inclusion_proof_keys(batch, size))
        yield from zip(batch, merkle.inclusion_proofs(batch, size, nodes), strict=True)
        nodes.trim()


def tree_root(nodes: BatchedNodes, size: int) -> bytes:
    """Root of the stored tree of ``size`` leaves (its O(log n) border nodes in one read)."""
    if size == 0:
        return EMPTY_ROOT
    nodes.prefetch(keys_read(lambda node: subtree_hash(0, size, node)))
    return subtree_hash(0, size, nodes)
