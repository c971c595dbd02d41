"""The ledger's tables as the sequencer's storage: what ``integrate`` and the checkpoint
signing read and write, as rows on one connection (one sequencer transaction).

The same tables and statements on SQLite and PostgreSQL; what differs (the floor's
column) comes from the dialect object (dialects.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from privet.kit.ids import utcnow
from privet.ledger.dialects import Floor, SequencerDialect
from privet.ledger.emit import driver_insert_columns
from privet.ledger.integrate import LedgerIntegrityError, PendingEntry, TreeState
from privet.ledger.leaf_rows import leaf_columns
from privet.ledger.tables import (
    LedgerCheckpoint,
    LedgerLeaf,
    LedgerLeafObject,
    LedgerNode,
    LedgerTreeState,
)
from privet.ledger.zones import write_zones
from privet_audit.merkle import EMPTY_ROOT, Node

__all__ = ["SqlStorage", "StoredState", "node_reader"]

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_leaf_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]
_states = LedgerTreeState.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]


def node_reader(conn: Connection) -> Callable[[int, int], bytes]:
    """``node(level, index)`` over the stored tree (level 0: leaf hashes)."""

    def node(level: int, index: int) -> bytes:
        if level == 0:
            value = conn.execute(
                select(_leaves.c.leaf_hash).where(_leaves.c.idx == index)
            ).scalar_one_or_none()
        else:
            value = conn.execute(
                select(_nodes.c.hash).where(_nodes.c.level == level, _nodes.c.idx == index)
            ).scalar_one_or_none()
        if value is None:
            raise LedgerIntegrityError(f"tree node (level {level}, index {index}) is missing")
        return bytes(value)

    return node


@dataclass(frozen=True)
class StoredState(TreeState):
    """A ``ledger_tree_states`` row: the tree and the floor of the pass that wrote it."""

    floor: Floor


class SqlStorage:
    """The ledger's tables on ``conn``; leaves written are stamped ``now``."""

    def __init__(
        self, conn: Connection, dialect: SequencerDialect, now: datetime | None = None
    ) -> None:
        self.conn, self.dialect = conn, dialect
        self.now = now or utcnow()
        self._node = node_reader(conn)
        self._state: StoredState | None = None

    def node(self, level: int, index: int) -> bytes:
        return self._node(level, index)

    def tree_state(self) -> StoredState:
        """The latest tree state (read once: the sequencer holds the lock)."""
        if self._state is None:
            row = self.conn.execute(
                select(
                    _states.c.tree_size,
                    _states.c.root_hash,
                    _states.c.floor_entry_id,
                    _states.c.floor_xid,
                )
                .order_by(_states.c.id.desc())
                .limit(1)
            ).first()
            self._state = (
                StoredState(0, EMPTY_ROOT, Floor())
                if row is None
                else StoredState(int(row[0]), bytes(row[1]), Floor(int(row[2]), int(row[3] or 0)))
            )
        return self._state

    def write_leaves(
        self, start: int, entries: Sequence[PendingEntry], hashes: Sequence[bytes]
    ) -> None:
        leaf_cols, obj_cols = leaf_columns(entries, hashes, start, self.now)
        # the same rows as insert(table), without SQLAlchemy's per-row cost
        driver_insert_columns(self.conn, _leaves, leaf_cols)
        driver_insert_columns(self.conn, _leaf_objects, obj_cols)
        write_zones(self.conn, start, len(entries))

    def write_nodes(self, nodes: Sequence[Node]) -> None:
        columns: dict[str, list[Any]] = {
            "level": [n.level for n in nodes],
            "idx": [n.index for n in nodes],
            "hash": [n.hash for n in nodes],
        }
        driver_insert_columns(self.conn, _nodes, columns)

    def write_tree_state(self, size: int, root: bytes, floor: Floor, at: datetime) -> None:
        self.conn.execute(
            insert(_states),
            {
                "tree_size": size,
                "root_hash": root,
                "floor_entry_id": floor.entry_id,
                "floor_xid": self.dialect.stored_floor_xid(floor),
                "created_at": at,
            },
        )

    def latest_checkpoint(self) -> tuple[int, str, datetime] | None:
        """(size, note, created at) of the largest checkpoint row, if any."""
        row = self.conn.execute(
            select(_checkpoints.c.tree_size, _checkpoints.c.note, _checkpoints.c.created_at)
            .order_by(_checkpoints.c.tree_size.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row[0]), str(row[1]), row[2])

    def write_checkpoint(self, size: int, root: bytes, note: str, at: datetime) -> None:
        self.conn.execute(
            insert(_checkpoints),
            {"tree_size": size, "root_hash": root, "note": note, "created_at": at},
        )
