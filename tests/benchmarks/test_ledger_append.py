"""Benchmark: sustained ledger appends/s on SQLite and PostgreSQL, 1 and 4 writers.

Run on demand: ``pytest tests/benchmarks/test_ledger_append.py -s -p no:cacheprovider``
(``PRIVET_BENCH_APPENDS`` events per writer, default 2000). An append is one event
committed durably in its own transaction by a writer process (``emit`` + commit); every
writer process also runs the background sequencer, as API replicas do. The baseline,
measured in the same run on the same database with the same writers, is the same
transactions without the ledger: one durable ``session_scope`` transaction inserting one
row of an event's size. The ratio is therefore the ledger's own cost (validation,
encoding, the entry insert, the writer lock, the background sequencer's passes). Prints
appends/s, the ratio to that baseline, and how long the sequencer needed after the last
append to have integrated everything (its lag). No timed assertion.

Each case runs twice: "durable" (the platform's settings: SQLite synchronous=FULL,
PostgreSQL synchronous_commit=on; an append survives power loss) and "relaxed" (SQLite
synchronous=NORMAL, PostgreSQL synchronous_commit=off, set by the benchmark's writers
only), which removes the per-commit fsync and shows the ledger's own ceiling.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from privet.config import get_settings
from privet.db import create_db_engine, is_sqlite
from privet.ledger.sequencer import Ledger
from privet.ledger.settings import get_ledger_settings
from tests.ledger._workers import append_worker, raw_commit_worker

N = int(os.environ.get("PRIVET_BENCH_APPENDS", "2000"))
RESULTS: list[str] = []


def _run(target, url: str, writers: int, n: int) -> tuple[float, list[dict]]:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, w, n, go, results)) for w in range(writers)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    started = time.perf_counter()
    go.set()
    reports = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(60)
    errors = [e for r in reports for e in r["errors"]]
    assert not errors, errors[:3]
    return elapsed, reports


@pytest.mark.parametrize("durability", ["durable", "relaxed"])
@pytest.mark.parametrize("writers", [1, 4])
def test_ledger_append_rate(
    db_url: str, writers: int, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if durability == "relaxed":
        monkeypatch.setenv("PRIVET_BENCH_RELAXED", "1")
    home = tmp_path / "home"
    monkeypatch.setenv("PRIVET_HOME", str(home))
    monkeypatch.setenv("PRIVET_DATABASE_URL", db_url)
    get_settings.cache_clear()
    get_ledger_settings.cache_clear()
    engine = create_db_engine(db_url)
    backend = "SQLite" if is_sqlite(engine) else "PostgreSQL"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
        ddl = (
            "CREATE TABLE bench_raw (id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB, created_at REAL)"
            if is_sqlite(engine)
            else "CREATE TABLE bench_raw (id BIGSERIAL PRIMARY KEY, b BYTEA, created_at FLOAT8)"
        )
        conn.execute(text(ddl))
    engine.dispose()

    base_s, _ = _run(raw_commit_worker, db_url, writers, N)
    total = writers * N
    base_rate = total / base_s

    ledger_s, _ = _run(append_worker, db_url, writers, N)
    rate = total / ledger_s
    # the writers' own sequencers ran until they stopped; how far behind were they?
    engine = create_db_engine(db_url)
    ledger = Ledger(engine)
    with engine.connect() as conn:
        integrated_at_end = int(
            conn.execute(text("SELECT count(*) FROM ledger_leaves")).scalar_one()
        )
    t = time.perf_counter()
    head = ledger.integrate_now()
    drain = time.perf_counter() - t
    assert head.size == total
    engine.dispose()
    line = (
        f"{backend:<10} {durability:<7} {writers} writer(s): {rate:7.0f} appends/s "
        f"({rate / base_rate:4.2f}x the same transactions without the ledger: {base_rate:.0f}/s); "
        f"integrated when writers stopped: {integrated_at_end}/{total}; "
        f"final drain {drain * 1000:.0f} ms"
    )
    RESULTS.append(line)
    print("\n" + line)


def teardown_module() -> None:
    print(f"\n\nledger append benchmark (N = {N} per writer)")
    for line in RESULTS:
        print("  " + line)
