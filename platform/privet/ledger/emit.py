"""``emit``: the one way the platform records an audit event.

The event is inserted into ``ledger_entries`` in the caller's transaction, so the state
change and its event commit together or not at all; once the transaction commits the
event is durable (the database's commit is) and the sequencer integrates it into the
Merkle tree shortly after (see sequencer.py). ``emit`` never touches the tree itself, so
writers never wait for each other beyond the database's own row insert.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from privet.kit.ids import utcnow
from privet.kit.process_state import ProcessRegistry
from privet.ledger.settings import get_ledger_settings
from privet.ledger.tables import LedgerEntry
from privet_audit.canonical import CanonicalError
from privet_audit.events import EventError, format_time, make_event

__all__ = [
    "MAX_DETAIL_CHARS",
    "EventSpec",
    "LedgerEventError",
    "driver_insert_columns",
    "driver_insert_many",
    "emit",
    "emit_many",
    "encode_events",
    "insert_entries",
    "ledger_write_lock",
    "notify_events_committed",
    "on_commit_with_events",
    "prose_in",
]

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_PENDING = "privet.ledger.pending"
_SQLITE_TOP_ID_SQL = (
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ledger_entries'), 0), "
    "coalesce((SELECT max(id) FROM ledger_entries), 0))"
)


class LedgerEventError(ValueError):
    """An event was refused: it breaks the event schema (e.g. a float, a bad id) or is too
    large. This is a programming error in the caller (events carry ids, digests and small
    non-personal facts only), so it is not a user-facing 4xx."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event for ``emit_many``; the fields mean what ``emit``'s arguments mean."""

    type: str
    actor: str | None
    project: str | None = None
    objects: Mapping[str, str] | None = None
    digests: Mapping[str, str] | None = None
    outcome: str = "ok"
    details: Mapping[str, Any] | None = None


#: Longest string an event's details may hold: ids, codes, digests, times, numbers.
MAX_DETAIL_CHARS = 200
#: Keys whose values are class labels a data steward chose (they may hold spaces, e.g.
#: ``not spam``): still short and on one line, never caller prose.
_LABEL_KEYS = frozenset({"label", "original_label", "predicted_label"})


def prose_in(details: Mapping[str, Any] | None, path: str = "details") -> str | None:
    """Where ``details`` holds prose (None: nowhere): a string with whitespace or a
    control character, or longer than ``MAX_DETAIL_CHARS``. The ledger can never be
    erased, so caller-supplied text and exception messages stay out of it: details hold
    ids, enumerations, numbers and times, and content goes in as a digest."""
    if not details:
        return None
    for key, value in details.items():
        where = f"{path}.{key}"
        if isinstance(value, str):
            if len(value) > MAX_DETAIL_CHARS or not value.isprintable():
                return where
            if " " in value and key not in _LABEL_KEYS:
                return where
        elif isinstance(value, Mapping):
            found = prose_in(value, where)
            if found:
                return found
        elif isinstance(value, list | tuple):
            found = prose_in({f"{key}[{i}]": v for i, v in enumerate(value)}, path)
            if found:
                return found
    return None


def _encode(spec: EventSpec, time: str, limit: int) -> bytes:
    prose = prose_in(spec.details)
    if prose is not None:
        raise LedgerEventError(
            f"audit event {spec.type!r} refused: {prose} holds prose (whitespace, a control "
            f"character or over {MAX_DETAIL_CHARS} characters); the ledger is never erased, "
            "so record ids, enumerations or a digest, and keep text sealed at rest"
        )
    try:
        data = make_event(
            type=spec.type,
            actor=spec.actor,
            project=spec.project,
            objects=spec.objects,
            digests=spec.digests,
            outcome=spec.outcome,
            details=spec.details,
            time=time,
        )
    except (EventError, CanonicalError) as exc:
        raise LedgerEventError(f"audit event {spec.type!r} refused: {exc}") from exc
    if len(data) > limit:
        raise LedgerEventError(
            f"audit event {spec.type!r} refused: {len(data)} bytes once encoded, more than "
            f"the {limit}-byte limit (PRIVET_LEDGER_MAX_EVENT_BYTES); keep details small "
            "and record large content as a digest"
        )
    return data


def emit(
    session: Session,
    *,
    type: str,
    actor: str | None,
    project: str | None = None,
    objects: dict[str, str] | None = None,
    digests: dict[str, str] | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> int:
    """Add one audit event to the ledger in ``session``'s transaction; return its entry id.

    The entry id orders allocation only; the event's tree index is assigned when the
    sequencer integrates it after commit. Raises ``LedgerEventError`` for an event that
    breaks the schema (floats, non-id strings, unknown outcome) or is too large.
    """
    spec = EventSpec(type, actor, project, objects, digests, outcome, details)
    return emit_many(session, [spec])[0]


def encode_events(
    events: Sequence[EventSpec], *, at: Sequence[datetime] | None = None
) -> list[dict[str, Any]]:
    """Validate and canonically encode events into ``ledger_entries`` rows (no database).

    Every event is stamped now, unless ``at`` gives each its own (timezone-aware) time: a
    replay of past traffic (``privet dev seed``) writes what the platform would have
    written then. Raises ``LedgerEventError`` for the first event that breaks the schema
    or is too large. The group-commit appender calls this in the caller's thread, so a
    bad event fails its own caller and never joins a batch."""
    limit = get_ledger_settings().max_event_bytes
    if at is None:
        now = utcnow()
        time = format_time(now)
        return [{"event": _encode(spec, time, limit), "created_at": now} for spec in events]
    if len(at) != len(events):
        raise LedgerEventError(f"{len(events)} events but {len(at)} times: one time per event")
    try:
        return [
            {"event": _encode(spec, format_time(when), limit), "created_at": when}
            for spec, when in zip(events, at, strict=True)
        ]
    except EventError as exc:  # format_time: a naive datetime
        raise LedgerEventError(f"audit event time refused: {exc}") from exc


def driver_insert_many(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``INSERT`` ``rows`` (dicts with the same keys) into ``table`` through the database
    driver (sqlite3: ``executemany``; psycopg: one ``INSERT ... SELECT FROM unnest`` of one
    array per column), in ``conn``'s transaction, each value bound exactly as SQLAlchemy
    binds it (the column type's bind processor).

    SQLAlchemy's own executemany spends most of an append's CPU building parameters row by
    row; the ledger's writers (the appender, the sequencer) insert many small rows per
    transaction, so they take this path. Errors are raised as SQLAlchemy raises them
    (``IntegrityError``, ``OperationalError``, ...)."""
    if not rows:
        return
    driver_insert_columns(conn, table, {name: [row[name] for row in rows] for name in rows[0]})


def driver_insert_columns(conn: Connection, table: Any, columns: dict[str, list[Any]]) -> None:
    """``driver_insert_many`` for rows given column by column (``{name: values}``, all of
    one length): the same statement and bound values without a dict per row."""
    names_list = list(columns)
    if not names_list or not columns[names_list[0]]:
        return
    # table.c[name]: a KeyError for anything but the table's own columns, so the names
    # (and types) in the statement come from its metadata, never from input.
    binders = [_binder(table.c[name].type, conn.dialect) for name in names_list]
    names = ", ".join(f'"{name}"' for name in names_list)
    values = [
        columns[name] if bind is None else _bind_column(columns[name], bind)
        for name, bind in zip(names_list, binders, strict=True)
    ]
    if conn.dialect.name == "postgresql":
        # One statement, one array per column, sent in binary (%b): psycopg's executemany
        # sends and adapts every row on its own, and text arrays escape every element;
        # together that was most of a sequencer pass's time.
        arrays = ", ".join(
            f"%b::{table.c[name].type.compile(dialect=conn.dialect)}[]" for name in names_list
        )
        statement = f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays})'  # noqa: S608
        _driver_call(conn, statement, lambda cur: cur.execute(statement, values))
        return
    marks = ", ".join(["?"] * len(names_list))
    statement = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608
    params = list(zip(*values, strict=True))
    _driver_call(conn, statement, lambda cur: cur.executemany(statement, params))


_UNSET = object()


def _bind_column(column: list[Any], bind: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    last: Any = _UNSET
    bound: Any = None
    for value in column:
        if value is not last:  # e.g. one integrated_at for a whole pass: bound once
            last, bound = value, bind(value)
        out.append(bound)
    return out


def _driver_call(conn: Connection, statement: str, call: Callable[[Any], Any]) -> Any:
    from sqlalchemy.exc import DBAPIError

    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return call(cursor)
    except dbapi_error as exc:  # raise what SQLAlchemy would (IntegrityError, ...)
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc
    finally:
        cursor.close()


_binders: ProcessRegistry[tuple[int, str], Callable[[Any], Any] | None] = ProcessRegistry(
    "ledger.binders",
    why="SQLAlchemy's bind processor of a column type for a dialect, worked out once per "
    "process for the ledger's own driver-level inserts (the tables are module-level too)",
)


def _binder(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    return _binders.get_or_create(
        (id(type_), dialect.name), lambda: type_.dialect_impl(dialect).bind_processor(dialect)
    )


def _insert_sqlite(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """SQLite: the rows through the driver, in the connection's transaction.

    SQLAlchemy's executemany with RETURNING runs one statement per row here (SQLite does
    not promise RETURNING's order), and its per-statement overhead is most of an append's
    cost. This transaction holds the database's write lock (``BEGIN IMMEDIATE``; a
    deferred transaction cannot upgrade past a newer commit), so nobody else inserts
    meanwhile: a single row takes the id AUTOINCREMENT gives it (``lastrowid``); several
    get, explicitly and in order, the ids AUTOINCREMENT would give them (one above the
    largest ever used) in one executemany. A collision could only fail the statement
    (primary key), never misnumber a row."""
    if len(rows) == 1:
        bind = _binder(_entries.c.created_at.type, conn.dialect)
        row = rows[0]
        value = row["created_at"] if bind is None else bind(row["created_at"])
        statement = "INSERT INTO ledger_entries (event, created_at) VALUES (?, ?)"

        def one(cursor: Any) -> int:
            cursor.execute(statement, (row["event"], value))
            return int(cursor.lastrowid)

        return [_driver_call(conn, statement, one)]
    top = int(
        _driver_call(
            conn, _SQLITE_TOP_ID_SQL, lambda cur: cur.execute(_SQLITE_TOP_ID_SQL).fetchone()[0]
        )
    )
    ids = list(range(top + 1, top + 1 + len(rows)))
    driver_insert_columns(
        conn,
        _entries,
        {
            "id": ids,
            "event": [r["event"] for r in rows],
            "created_at": [r["created_at"] for r in rows],
        },
    )
    return ids


#: PostgreSQL: one statement for a batch; the ids come from the sequence as the rows are
#: inserted in ``ORDER BY n`` order, so sorted ids map to the rows in order (the same
#: assumption SQLAlchemy's own "insertmanyvalues" makes for a serial primary key). The
#: arrays go in binary (%b): a text array escapes every element of every event.
_PG_INSERT_MANY = (
    "INSERT INTO ledger_entries (event, created_at) "
    "SELECT u.e, u.t FROM unnest(%b::bytea[], %b::timestamptz[]) WITH ORDINALITY AS u(e, t, n) "
    "ORDER BY u.n RETURNING id"
)


def _insert_pg(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """PostgreSQL: the rows through psycopg in one statement (SQLAlchemy's executemany
    costs several times more CPU per batch)."""
    bind = _binder(_entries.c.created_at.type, conn.dialect)
    events = [r["event"] for r in rows]
    times = [r["created_at"] for r in rows]
    if bind is not None:
        times = _bind_column(times, bind)

    def run(cursor: Any) -> list[int]:
        cursor.execute(_PG_INSERT_MANY, (events, times))
        return sorted(int(r[0]) for r in cursor.fetchall())

    ids: list[int] = _driver_call(conn, _PG_INSERT_MANY, run)
    if len(ids) != len(rows):
        raise RuntimeError(f"inserted {len(rows)} ledger entries but got {len(ids)} ids")
    return ids


def insert_entries(session: Session | Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert encoded rows (``encode_events``) in ``session``'s transaction, in order (one
    statement on PostgreSQL, one executemany on SQLite); their entry ids in that order.

    With an ORM ``Session`` the sequencer is woken after it commits; a caller passing a
    ``Connection`` calls ``notify_events_committed()`` after its commit instead."""
    if not rows:
        return []
    conn = session if isinstance(session, Connection) else session.connection()
    if conn.dialect.name == "sqlite":
        ids = _insert_sqlite(conn, rows)
    elif len(rows) > 1 and conn.dialect.name == "postgresql":
        ids = _insert_pg(conn, rows)
    elif len(rows) == 1:
        result = conn.execute(insert(_entries).returning(_entries.c.id), rows[0])
        ids = [int(result.scalar_one())]
    else:
        result = conn.execute(
            insert(_entries).returning(_entries.c.id, sort_by_parameter_order=True), list(rows)
        )
        ids = [int(i) for i in result.scalars().all()]
    if isinstance(session, OrmSession):
        session.info[_PENDING] = True
    return ids


def emit_many(session: Session, events: Sequence[EventSpec]) -> list[int]:
    """Add a batch of events in one statement (one durable write at commit); their ids."""
    if not events:
        return []
    return insert_entries(session, encode_events(events))


# --- queueing the ledger's own SQLite writers ---------------------------------------------


class _WriterQueue:
    """A thread lock, then an exclusive ``flock`` on ``<database>-ledger.lock``."""

    def __init__(self, database: str | None) -> None:
        self.path = (
            None
            if not database or database == ":memory:" or database.startswith("file:")
            else f"{database}-ledger.lock"
        )
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.pid = 0

    def _file(self) -> int | None:
        if self.path is None:
            return None
        if self.fd is None or self.pid != os.getpid():  # a forked child opens its own
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:  # a read-only directory: queue within the process only
                self.path = None
                return None
            self.pid = os.getpid()
        return self.fd

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self.lock:
            fd = self._file()
            if fd is None:
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's lock file (a forked child's copy is its parent's)."""
        if self.fd is not None and self.pid == os.getpid():
            os.close(self.fd)
        self.fd = None


_writer_queues: ProcessRegistry[str, _WriterQueue] = ProcessRegistry(
    "ledger.writer_queues",
    why="one thread lock and one flock per SQLite file and process: the ledger's writers "
    "(appender, sequencer) of every Runtime queue on the same one",
    close=_WriterQueue.close,
    clear_after_fork=True,  # a forked child opens its own lock file
)


def ledger_write_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """Held by the ledger's background writers (the group-commit appender and the
    sequencer) around each write transaction on SQLite, so that they queue for the
    database instead of polling for it. PostgreSQL needs nothing.

    SQLite has one write lock per database; a writer that finds it taken waits in SQLite's
    busy handler, which sleeps 1, 2, 5, 10... ms between tries. Writers that take turns
    all the time (an appender committing batch after batch in every API process, a
    sequencer in each) then lose milliseconds per hand-over and starve each other. Queued
    first on a thread lock and an exclusive ``flock`` on a file beside the database (the
    kernel wakes the next waiter as soon as the holder lets go; a crashed holder's lock is
    released with its process), they find SQLite's lock free and hand it over at once.
    Correctness never rests on this: the database's own lock still serializes every
    write transaction, and other writers (request transactions) do not take it.

    Never take it while this thread holds an open SQLite write transaction."""
    if engine.url.get_backend_name() != "sqlite":
        return contextlib.nullcontext()
    database = engine.url.database
    queue = _writer_queues.get_or_create(str(database), lambda: _WriterQueue(database))
    return queue.hold()


# --- commit hook: wake the in-process integrator after a commit that emitted events ------

_commit_callbacks: list[Callable[[], None]] = []
_callbacks_lock = threading.Lock()


def on_commit_with_events(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` after any session commit that emitted events; returns an
    unregister function. The sequencer registers its ``kick`` here."""
    with _callbacks_lock:
        _commit_callbacks.append(callback)

    def unregister() -> None:
        with _callbacks_lock:
            if callback in _commit_callbacks:
                _commit_callbacks.remove(callback)

    return unregister


def notify_events_committed() -> None:
    """Wake the in-process integrator: events were just committed (the ORM hook below
    does this for sessions; writers on a bare ``Connection`` call it themselves)."""
    for callback in list(_commit_callbacks):
        callback()


@sa_event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(_PENDING, False):
        notify_events_committed()


@sa_event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
