"""Database engines and sessions for SQLite (embedded) and PostgreSQL (production).

The schema is created only by Alembic migrations (`privet db upgrade`), never by
`create_all`, so that SQLite and PostgreSQL deployments have the same history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from privet.kit.errors import NotFoundError
from privet.kit.process_state import ProcessRegistry

_engines: ProcessRegistry[str, Engine] = ProcessRegistry(
    "db.engines",
    why="one connection pool per database URL, shared by every Runtime of the process and "
    "by the code that has none (CLI commands, migrations, workers' helpers)",
    close=Engine.dispose,
)


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for any PostgreSQL URL, whatever the user wrote."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """True for SQLite; the few dialect differences (triggers, locking) branch on this."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


READ_ONLY = "privet_read_only"


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN so concurrent writers queue instead of failing to
    # upgrade; read-only sessions read a WAL snapshot and block nobody. A read-only
    # transaction that tried to write could not upgrade its lock safely under concurrency
    # (SQLITE_BUSY_SNAPSHOT), so SQLite is told to refuse any write in it at once
    # (`query_only`): a route or report that writes where it promised to read fails in
    # every test, not only under load.
    read_only = bool(conn.get_execution_options().get(READ_ONLY))
    # Setting a flag pragma, even to the value it has, expires every prepared statement of
    # the connection, so each transaction re-prepared all of its statements (a ledger
    # append batch 79 -> 133 us of CPU, issue 19): set it only when the mode changes.
    # The mode is remembered beside the connection (the pool's `info`, cleared when the
    # connection is replaced; only this hook sets the flag on the platform's connections),
    # not read back with a statement before every BEGIN (issue 23 item 4).
    info = conn.connection.info
    if info.get(_QUERY_ONLY, False) != read_only:
        conn.exec_driver_sql(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        info[_QUERY_ONLY] = read_only
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


#: Key of a pooled SQLite connection's ``query_only`` flag as last set (a new connection
#: starts with it off).
_QUERY_ONLY = "privet_query_only"


def create_db_engine(url: str) -> Engine:
    """A new engine with the platform's connection settings for the URL's backend."""
    url = normalize_url(url)
    if is_sqlite(url):
        # A pool smaller than the server's request threads (anyio's 40) made requests past
        # the 15th wait out the 30 s pool timeout. The pool keeps as many idle connections as
        # there are request threads (and the ledger's writer and sequencer): an overflow
        # connection is closed when it is returned, and opening one (file, WAL index,
        # pragmas) costs a request more than its query.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=48,
            max_overflow=64,
        )

        # Let SQLAlchemy, not pysqlite, decide when transactions start.
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None
            _sqlite_pragmas(dbapi_connection, record)

        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # Kept connections for every request thread (anyio's 40) but a few: past pool_size each
    # request would open a new server connection (a backend process) and close it again.
    return create_engine(url, pool_pre_ping=True, pool_size=30, max_overflow=10)


def get_engine(url: str) -> Engine:
    """The process-wide engine for a URL (created on first use)."""
    url = normalize_url(url)
    return _engines.get_or_create(url, lambda: create_db_engine(url))


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests and forked workers
    call this)."""
    _engines.reset()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


_READ_ONLY_ENGINE = "_privet_read_only_engine"


def read_only(engine: Engine) -> Engine:
    """The engine whose transactions only read: on SQLite a WAL snapshot that holds no
    write lock (and refuses writes); elsewhere the engine itself. Made once per engine and
    kept on it (every read-only request asks for it)."""
    found: Engine | None = engine.__dict__.get(_READ_ONLY_ENGINE)
    if found is None:
        found = engine.__dict__[_READ_ONLY_ENGINE] = engine.execution_options(**{READ_ONLY: True})
    return found


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for long reads (exports, verification): a consistent snapshot that does not
    hold SQLite's write lock. It must not write."""
    with Session(read_only(engine), expire_on_commit=False) as s:
        try:
            yield s
        finally:
            s.rollback()


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Serialise start-up work (migrating an empty database, bootstrapping the first admin)
    between processes starting at once. PostgreSQL: a session advisory lock; SQLite: the
    write lock that every writing transaction takes at BEGIN already does it."""
    if is_sqlite(engine):
        yield
        return
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('privet.startup'))"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('privet.startup'))"))
            conn.commit()


class _ProjectRow(Protocol):
    @property
    def project_id(self) -> str: ...


RowT = TypeVar("RowT", bound=_ProjectRow)


def get_in_project(
    session: Session, table: type[RowT], row_id: str, *, project_id: str | None, what: str
) -> RowT:
    """The row `row_id` of `table`, or NotFoundError naming it as `what` ("model version"),
    also when it belongs to another project than `project_id` (None: any project): no
    project learns that another's ids exist."""
    row = session.get(table, row_id)
    if row is None or (project_id is not None and row.project_id != project_id):
        raise NotFoundError(f"{what} {row_id!r} does not exist")
    return row
