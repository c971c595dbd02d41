"""Where SQLite and PostgreSQL differ for the sequencer, each difference in one place.

- The sequencer lock: on SQLite the database write lock that ``BEGIN IMMEDIATE``
  (privet.db) already took; on PostgreSQL ``pg_advisory_xact_lock``.
- The floor below which every entry is integrated or will never exist, and so the scan
  for pending entries (see sequencer.py for the argument): on SQLite the last entry id
  integrated (writers hold the write lock for their whole transaction, so under the
  sequencer's lock every allocated id is committed or gone); on PostgreSQL a
  transaction id (ids come from a sequence outside transactions, so they do not commit
  in id order), moved to the xmin of a snapshot once a pass saw every entry below it.
- How the floor is stored in a ``ledger_tree_states`` row, and how ``privet audit
  verify`` finds an entry below it that lost its leaf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, column, text

from privet.kit.types import UTCDateTime

__all__ = [
    "POSTGRES",
    "SEQUENCER_LOCK_KEY",
    "SQLITE",
    "Floor",
    "SequencerDialect",
    "dialect_of",
]

#: pg_advisory_xact_lock key of the sequencer ("privet.l" as a big-endian int64).
SEQUENCER_LOCK_KEY = int.from_bytes(b"privet.l", "big") & 0x7FFF_FFFF_FFFF_FFFF

_PENDING_SQL = text(
    "SELECT e.id, e.event, e.created_at FROM ledger_entries e WHERE e.id > :floor "
    "AND NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id) "
    "ORDER BY e.id LIMIT :limit"
).columns(
    # typed: SQLite hands back a string, which an entry without a valid time would get
    # as its event_time (leaf_rows' fallback) and fail to bind, wedging the sequencer
    column("id"),
    column("event"),
    column("created_at", UTCDateTime()),
)

#: PostgreSQL: every transaction with an xid below this has ended (committed or rolled
#: back); a statement run after it sees every one of them that committed.
_XMIN_SQL = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")

_PENDING_PG_SQL = text(
    "SELECT e.id, e.event, e.created_at FROM ledger_entries e "
    "WHERE e.xid >= CAST(CAST(:floor_xid AS text) AS xid8) "
    "AND NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id) "
    "ORDER BY e.id LIMIT :limit"
)

#: PostgreSQL: does any entry have an xid in [floor, xmin) (else moving the floor is moot)?
_WINDOW_PG_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM ledger_entries e "
    "WHERE e.xid >= CAST(CAST(:lo AS text) AS xid8) AND e.xid < CAST(CAST(:hi AS text) AS xid8))"
)

_LOST_SQL = text(
    "SELECT min(e.id) FROM ledger_entries e WHERE e.id <= :floor AND NOT EXISTS "
    "(SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id)"
)

_LOST_PG_SQL = text(
    "SELECT min(e.id) FROM ledger_entries e "
    "WHERE e.xid < CAST(CAST(:fx AS text) AS xid8) AND NOT EXISTS "
    "(SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id)"
)


@dataclass(frozen=True)
class Floor:
    """Every entry below it is integrated or will never exist: ``entry_id`` on SQLite
    (0 on PostgreSQL), ``xid`` on PostgreSQL (0 on SQLite)."""

    entry_id: int = 0
    xid: int = 0


class SequencerDialect(Protocol):
    def lock(self, conn: Connection, *, wait: bool) -> bool:
        """Take the sequencer lock for ``conn``'s transaction; False: busy (``wait=False``)."""
        ...

    def pending(self, conn: Connection, floor: Floor, limit: int) -> tuple[Sequence[Any], Floor]:
        """Up to ``limit`` committed entries above ``floor`` without a leaf, in id order
        ((id, event, created_at) rows), and the floor once they are integrated."""
        ...

    def stored_floor_xid(self, floor: Floor) -> int | None:
        """The ``floor_xid`` column of a tree-state row."""
        ...

    def lost_entry(
        self, conn: Connection, floor_entry_id: int, floor_xid: int | None
    ) -> int | None:
        """An entry below a stored floor without a leaf, if any."""
        ...


def _lost_below(conn: Connection, floor_entry_id: int) -> int | None:
    lost = conn.execute(_LOST_SQL, {"floor": floor_entry_id}).scalar()
    return None if lost is None else int(lost)


class _Sqlite:
    def lock(self, conn: Connection, *, wait: bool) -> bool:
        return True  # BEGIN IMMEDIATE (privet.db) already holds the database write lock

    def pending(self, conn: Connection, floor: Floor, limit: int) -> tuple[Sequence[Any], Floor]:
        rows = conn.execute(_PENDING_SQL, {"floor": floor.entry_id, "limit": limit}).all()
        return rows, (Floor(int(rows[-1][0]), floor.xid) if rows else floor)

    def stored_floor_xid(self, floor: Floor) -> int | None:
        return None

    def lost_entry(
        self, conn: Connection, floor_entry_id: int, floor_xid: int | None
    ) -> int | None:
        return _lost_below(conn, floor_entry_id)


class _Postgres:
    def lock(self, conn: Connection, *, wait: bool) -> bool:
        if wait:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK_KEY})
            return True
        got = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK_KEY}
        ).scalar_one()
        return bool(got)

    def pending(self, conn: Connection, floor: Floor, limit: int) -> tuple[Sequence[Any], Floor]:
        # xmin FIRST, in its own statement: every transaction with an xid below it has
        # ended, so the scan below (a later snapshot) sees all of them that committed.
        # Only a pass that saw the whole scan may move the floor to it.
        xmin = int(conn.execute(_XMIN_SQL).scalar_one())
        rows = conn.execute(_PENDING_PG_SQL, {"floor_xid": floor.xid, "limit": limit}).all()
        if (
            len(rows) < limit
            and xmin > floor.xid
            and (rows or conn.execute(_WINDOW_PG_SQL, {"lo": floor.xid, "hi": xmin}).scalar_one())
        ):
            return rows, Floor(floor.entry_id, xmin)
        return rows, floor

    def stored_floor_xid(self, floor: Floor) -> int | None:
        return floor.xid

    def lost_entry(
        self, conn: Connection, floor_entry_id: int, floor_xid: int | None
    ) -> int | None:
        lost = _lost_below(conn, floor_entry_id)
        if lost is None and floor_xid is not None:
            # PostgreSQL's floor is a transaction id: every entry inserted by a
            # transaction with an xid below it must be integrated.
            value = conn.execute(_LOST_PG_SQL, {"fx": int(floor_xid)}).scalar()
            lost = None if value is None else int(value)
        return lost


SQLITE: SequencerDialect = _Sqlite()
POSTGRES: SequencerDialect = _Postgres()


def dialect_of(bind: Engine | Connection) -> SequencerDialect:
    """The sequencer dialect of an engine or connection (PostgreSQL unless SQLite)."""
    return SQLITE if bind.dialect.name == "sqlite" else POSTGRES
