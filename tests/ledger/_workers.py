"""Process entry points for the multi-process tests and the benchmark (spawned, so they
must be importable)."""

from __future__ import annotations

import os
import time
from typing import Any


def _make_engine(url: str) -> Any:
    """The platform's engine; with PRIVET_BENCH_RELAXED=1 (benchmark only) commits do not
    wait for fsync (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off), which
    shows the ledger's own ceiling rather than the disk's."""
    from sqlalchemy import event

    from privet.db import create_db_engine, is_sqlite

    engine = create_db_engine(url)
    if os.environ.get("PRIVET_BENCH_RELAXED") == "1":
        sqlite = is_sqlite(engine)

        @event.listens_for(engine, "connect")
        def _relax(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            if sqlite:
                cur.execute("PRAGMA synchronous=NORMAL")
            else:
                cur.execute("SET synchronous_commit = off")
                dbapi_connection.commit()
            cur.close()

    return engine


def append_worker(
    url: str, worker: int, n: int, go: Any, results: Any, *, sequencer: bool = True
) -> None:
    """Append ``n`` events, each committed in its own transaction, and report back."""
    from privet.db import session_scope
    from privet.ledger import emit
    from privet.ledger.sequencer import start_sequencer, stop_sequencer

    engine = _make_engine(url)
    seq = start_sequencer(engine) if sequencer else None
    ids: list[int] = []
    errors: list[str] = []
    with session_scope(engine) as s:  # warm the connection pool
        s.connection()
    go.wait()
    started = time.perf_counter()
    for i in range(n):
        try:
            with session_scope(engine) as s:
                ids.append(emit(s, type="test.append", actor=f"prn_w{worker}", details={"i": i}))
        except Exception as exc:  # reported to the parent
            errors.append(repr(exc))
    elapsed = time.perf_counter() - started
    if seq is not None:
        stop_sequencer(engine)
        errors.extend(["sequencer error"] * seq.errors)
    engine.dispose()
    results.put({"worker": worker, "ids": ids, "seconds": elapsed, "errors": errors})


def raw_commit_worker(url: str, worker: int, n: int, go: Any, results: Any) -> None:
    """Baseline: the same number of durable one-row transactions through the platform's
    session (``session_scope``), inserting a row of an event's size, without the ledger."""
    from sqlalchemy import text

    from privet.db import session_scope

    engine = _make_engine(url)
    payload = b"x" * 180  # about the size of a small canonical event
    stmt = text("INSERT INTO bench_raw (b, created_at) VALUES (:b, :t)")
    with session_scope(engine) as s:
        s.connection()
    go.wait()
    started = time.perf_counter()
    for _ in range(n):
        with session_scope(engine) as s:
            s.execute(stmt, {"b": payload, "t": time.time()})
    elapsed = time.perf_counter() - started
    engine.dispose()
    results.put({"worker": worker, "ids": [], "seconds": elapsed, "errors": []})
