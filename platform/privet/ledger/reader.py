"""Long reads of the whole log (export, verify): a connection that does not stall the
writers, and the leaves' entries in index order, chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, create_engine, select
from sqlalchemy import event as sa_event
from sqlmodel import Session

from privet.db import READ_ONLY, is_sqlite
from privet.kit.process_state import ProcessRegistry
from privet.ledger.tables import LedgerEntry, LedgerLeaf

__all__ = ["CHUNK", "LeafEntry", "Progress", "bulk_reader", "iter_leaf_entries", "iter_leaf_rows"]

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]

#: Leaves read per statement.
CHUNK = 5000

#: progress(done, total) in leaves.
Progress = Callable[[int, int], None]

#: (index, entry id, stored leaf hash, entry bytes); None where the row is gone.
LeafEntry = tuple[int, int | None, bytes | None, bytes | None]

_read_engines: ProcessRegistry[str, Engine] = ProcessRegistry(
    "ledger.read_engines",
    why="long reads get a plain read-only SQLite engine per database, and the reader "
    "sees only a session",
    close=Engine.dispose,
)


def _read_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa_event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN
        dbapi_connection.execute("PRAGMA query_only=ON")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    return engine


@contextmanager
def bulk_reader(session: Session) -> Iterator[Connection]:
    """A connection for long reads (export, verify).

    On SQLite the platform's engine begins every transaction with BEGIN IMMEDIATE, which
    would hold the database write lock (and stall every writer) for the whole read; long
    reads use a plain read-only connection instead, whose statements each read a WAL
    snapshot. The ledger is append-only, so chunks read at different moments agree. On
    PostgreSQL the session's own connection is used.
    """
    bind = session.get_bind()
    if (
        not isinstance(bind, Engine)
        or not is_sqlite(bind)
        or bind.get_execution_options().get(READ_ONLY)  # privet.db.read_session: a snapshot
    ):
        yield session.connection()
        return
    url = bind.url.render_as_string(hide_password=False)
    engine = _read_engines.get_or_create(url, lambda: _read_engine(url))
    with engine.connect() as conn:
        yield conn


def iter_leaf_entries(
    conn: Connection, size: int, progress: Progress | None = None
) -> Iterator[LeafEntry]:
    """(index, entry id, stored leaf hash, entry bytes) for leaves [0, size) in index
    order; entry bytes None when the entry row is gone; stops early at a missing index."""
    for entry, _ in iter_leaf_rows(conn, size, progress):
        yield entry


def iter_leaf_rows(
    conn: Connection,
    size: int,
    progress: Progress | None = None,
    extra: Sequence[ColumnElement[Any]] = (),
) -> Iterator[tuple[LeafEntry, tuple[Any, ...]]]:
    """``iter_leaf_entries``, each with the ``extra`` columns (of ``ledger_leaves`` or
    ``ledger_entries``) read by the same statement."""
    start = 0
    while start < size:
        end = min(size, start + CHUNK)
        rows = conn.execute(
            select(_leaves.c.idx, _leaves.c.entry_id, _leaves.c.leaf_hash, _entries.c.event, *extra)
            .select_from(_leaves.outerjoin(_entries, _entries.c.id == _leaves.c.entry_id))
            .where(_leaves.c.idx >= start, _leaves.c.idx < end)
            .order_by(_leaves.c.idx)
        ).all()
        for row in rows:
            idx, eid, lh, event = row[:4]
            entry = (
                int(idx),
                int(eid) if eid is not None else None,
                bytes(lh) if lh is not None else None,
                bytes(event) if event is not None else None,
            )
            yield entry, row[4:]
        if progress is not None:
            progress(end, size)
        if len(rows) < end - start:
            return
        start = end
