"""Integration: append entries' leaves to the Merkle tree kept in an injected storage.

As in Tessera's integrate.go, the tree arithmetic is a function of a storage that knows
nothing about SQL: it reads the tree state and the stored perfect-subtree nodes it
needs, hashes the entries, extends the tree and writes the leaves and the nodes they
complete back through the storage. It can therefore be checked against published RFC
6962 vectors on an in-memory storage, while each database's storage is only rows read
and written. The sequencer claims the lock, reads the pending entries, calls
``integrate`` in its transaction, then records the tree state and signs checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from privet_audit.merkle import CompactRange, Node

__all__ = [
    "Integrated",
    "LedgerIntegrityError",
    "PendingEntry",
    "TreeState",
    "TreeStorage",
    "integrate",
    "leaf_hashes",
]

_sha256 = hashlib.sha256


class LedgerIntegrityError(RuntimeError):
    """The stored tree disagrees with itself or with the previous checkpoint: the
    sequencer refuses to extend or sign it. Needs an operator (run `privet audit verify`)."""


#: A pending entry: (entry id, entry bytes, committed at). ``integrate`` hashes only the
#: bytes; the storage keeps the rest with the leaf.
PendingEntry = tuple[int, bytes, datetime | None]


@dataclass(frozen=True)
class TreeState:
    """The integrated tree a storage holds: its size and root."""

    size: int
    root: bytes


class TreeStorage(Protocol):
    """Where the tree lives: the latest tree state, the stored nodes (level 0: leaf
    hashes; above: perfect-subtree roots) and the writes of an integration."""

    def tree_state(self) -> TreeState:
        """The latest integrated tree state."""
        ...

    def node(self, level: int, index: int) -> bytes:
        """The stored node; ``LedgerIntegrityError`` if it is missing."""
        ...

    def write_leaves(
        self, start: int, entries: Sequence[PendingEntry], hashes: Sequence[bytes]
    ) -> None:
        """Store ``entries`` as leaves ``start``, ``start + 1``, ... with their hashes."""
        ...

    def write_nodes(self, nodes: Sequence[Node]) -> None:
        """Store perfect-subtree nodes (level >= 1) that an integration completed."""
        ...


@dataclass
class Integrated:
    """The tree after an integration: its border, root and the nodes just written."""

    range: CompactRange
    root: bytes
    #: (level, index) -> hash of every node written (level 0: the new leaves), so proofs
    #: over the new tree need not read back what was just written.
    written: dict[tuple[int, int], bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.range.size

    def reader(self, storage: TreeStorage) -> Callable[[int, int], bytes]:
        """``node(level, index)`` over the new tree: the written nodes, then ``storage``."""
        written, stored = self.written, storage.node

        def node(level: int, index: int) -> bytes:
            hit = written.get((level, index))
            return hit if hit is not None else stored(level, index)

        return node


def leaf_hashes(entries: Sequence[PendingEntry]) -> list[bytes]:
    """RFC 6962 leaf hashes of the entries' bytes (``leaf_hash``, inlined)."""
    sha = _sha256
    return [sha(b"\x00" + bytes(entry[1])).digest() for entry in entries]


def integrate(
    storage: TreeStorage, entries: Sequence[PendingEntry], *, known: Integrated | None = None
) -> Integrated:
    """Append ``entries`` as the next leaves of the storage's tree; return the new tree.

    ``known`` is a tree from an earlier integration: its border is reused when it is
    still the storage's tree (same size and root), else the border is read from the
    stored nodes, whose root must be the one the tree state says.
    """
    state = storage.tree_state()
    rng = _border(storage, state, known)
    if not entries:
        return Integrated(rng, rng.root())
    hashes = leaf_hashes(entries)
    nodes = rng.extend(hashes)
    storage.write_leaves(state.size, entries, hashes)
    storage.write_nodes(nodes)
    written = {(n.level, n.index): n.hash for n in nodes}
    for i, h in enumerate(hashes):
        written[(0, state.size + i)] = h
    return Integrated(rng, rng.root(), written)


def _border(storage: TreeStorage, state: TreeState, known: Integrated | None) -> CompactRange:
    if known is not None and known.size == state.size and known.root == state.root:
        return CompactRange(size=known.size, hashes=list(known.range.hashes))
    rng = CompactRange.from_nodes(state.size, storage.node)
    if rng.root() != state.root:
        raise LedgerIntegrityError(
            f"stored tree nodes give root {rng.root().hex()} for size {state.size}, but "
            f"the tree state says {state.root.hex()}"
        )
    return rng
