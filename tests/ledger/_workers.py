"""Process entry points for the multi-process tests and the benchmark (spawned, so they
must be importable)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
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


def run_writers(
    target: Callable[..., None],
    url: str,
    writers: int,
    n: int,
    *,
    settle: float,
    timeout: float,
    join: float,
    **kwargs: Any,
) -> tuple[float, list[dict[str, Any]], list[int | None]]:
    """Spawn ``writers`` processes of ``target`` (each ``n`` appends), give them ``settle``
    seconds to start, release them together: the seconds until every one reported, the
    reports, and the exit codes."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(target=target, args=(url, w, n, go, results), kwargs=kwargs)
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(settle)
    started = time.perf_counter()
    go.set()
    reports = [results.get(timeout=timeout) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(join)
    return elapsed, reports, [p.exitcode for p in procs]


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


def group_append_worker(
    url: str, worker: int, n: int, go: Any, results: Any, *, threads: int = 16
) -> None:
    """Append ``n`` events through the group-commit appender from ``threads`` concurrent
    request threads (as a server's thread pool does), each calling ``append_durable`` in a
    loop; the process runs its own background sequencer. Reports back like append_worker,
    plus the appender's batch counts."""
    import threading

    from privet.db import session_scope
    from privet.ledger import EventSpec, append_durable
    from privet.ledger.appender import get_appender, stop_appender
    from privet.ledger.sequencer import start_sequencer, stop_sequencer

    engine = _make_engine(url)
    seq = start_sequencer(engine)
    appender = get_appender(engine)
    appender.start()
    ids: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    with session_scope(engine) as s:  # warm the connection pool
        s.connection()

    def run(t: int, count: int) -> None:
        mine: list[int] = []
        go.wait()
        for i in range(count):
            try:
                spec = EventSpec("test.append", f"prn_w{worker}", details={"t": t, "i": i})
                mine.append(append_durable(engine, spec))
            except Exception as exc:  # reported to the parent
                errors.append(repr(exc))
        with lock:
            ids.extend(mine)

    shares = [n // threads + (1 if t < n % threads else 0) for t in range(threads)]
    pool = [threading.Thread(target=run, args=(t, c)) for t, c in enumerate(shares)]
    for th in pool:
        th.start()
    go.wait()
    started = time.perf_counter()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - started
    stop_appender(engine)
    stop_sequencer(engine)
    errors.extend(["sequencer error"] * seq.errors)
    engine.dispose()
    results.put(
        {
            "worker": worker,
            "ids": ids,
            "seconds": elapsed,
            "errors": errors,
            "batches": appender.batches,
            "largest_batch": appender.largest_batch,
        }
    )
