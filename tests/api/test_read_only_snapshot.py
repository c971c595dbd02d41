"""Safe methods read a snapshot without SQLite's write lock, and cannot write (issue 23).

SQLite-only: PostgreSQL reads never queue on a write lock, so there is nothing to refuse.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from privet.db import create_db_engine, read_session, session_scope
from tests.sqlite_only import db_url  # noqa: F401 - SQLite's locking is what is tested


def test_a_read_only_transaction_cannot_write(db_url: str) -> None:  # noqa: F811
    engine = create_db_engine(db_url)
    with pytest.raises(OperationalError, match="readonly"), read_session(engine) as s:
        s.execute(text("UPDATE auth_epoch SET value = value + 1 WHERE id = 1"))
    with session_scope(engine) as s:  # the same pooled connection writes again afterwards
        s.execute(text("UPDATE auth_epoch SET value = value + 1 WHERE id = 1"))
    with read_session(engine) as s:
        assert s.execute(text("SELECT value FROM auth_epoch")).scalar_one() == 1
    engine.dispose()


def test_query_only_is_set_only_when_the_mode_changes(db_url: str) -> None:  # noqa: F811
    """Setting a flag pragma expires every prepared statement of the connection: set before
    every BEGIN, it made each transaction re-prepare all of its statements (issue 19, the
    ledger's group commit ~5 % slower). Writes after writes, or reads after reads, on one
    pooled connection set nothing; each change of mode sets it once."""
    engine = create_db_engine(db_url)
    pragmas: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "query_only" in statement:
            pragmas.append(statement)

    bump = text("UPDATE auth_epoch SET value = value + 1 WHERE id = 1")
    for _ in range(3):
        with session_scope(engine) as s:
            s.execute(bump)
    assert pragmas == []  # a new connection starts with query_only off
    for _ in range(2):
        with read_session(engine) as s:
            assert s.execute(text("SELECT value FROM auth_epoch")).scalar_one() == 3
    assert pragmas == ["PRAGMA query_only = ON"]
    for _ in range(2):
        with session_scope(engine) as s:
            s.execute(bump)
    assert pragmas == ["PRAGMA query_only = ON", "PRAGMA query_only = OFF"]
    engine.dispose()


def test_begin_does_not_read_the_flag_back(db_url: str) -> None:  # noqa: F811
    """The mode last set is remembered beside the pooled connection: no statement per
    transaction reads it back (issue 23 item 4), and the flag still follows the mode."""
    engine = create_db_engine(db_url)
    traced: list[str] = []

    @event.listens_for(engine, "connect")
    def _trace(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.set_trace_callback(traced.append)

    for _ in range(2):
        with read_session(engine) as s:
            s.execute(text("SELECT 1"))
        with session_scope(engine) as s:
            s.execute(text("SELECT 1"))
    assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]  # one connection ran all four
    pragmas = [t for t in traced if "query_only" in t.lower()]
    assert pragmas == [f"PRAGMA query_only = {m}" for m in ("ON", "OFF", "ON", "OFF")]
    engine.dispose()


def test_a_reader_does_not_wait_for_a_writer(db_url: str) -> None:  # noqa: F811
    """A read-only snapshot starts while another connection holds the write lock."""
    engine = create_db_engine(db_url)
    other = create_db_engine(db_url)
    with engine.connect() as holder, holder.begin():  # BEGIN IMMEDIATE: the write lock
        holder.execute(text("UPDATE auth_epoch SET value = 41 WHERE id = 1"))
        started = time.monotonic()
        with read_session(other) as s:  # the snapshot from before the writer's change
            assert s.execute(text("SELECT value FROM auth_epoch")).scalar_one() == 0
        assert time.monotonic() - started < 5  # did not wait out the 30 s busy timeout
    other.dispose()
    engine.dispose()


def test_the_pool_outnumbers_the_request_threads(db_url: str) -> None:  # noqa: F811
    """Every request thread (anyio's limiter: 40) can hold a connection while the ledger's
    writer and sequencer hold theirs: with a smaller pool, requests past the 15th waited out
    the 30 s pool timeout at 16 concurrent clients (tests/benchmarks/test_gateway_concurrency)."""
    engine = create_db_engine(db_url)
    capacity = engine.pool.size() + engine.pool._max_overflow  # type: ignore[attr-defined]
    assert capacity >= 40 + 2
    engine.dispose()
