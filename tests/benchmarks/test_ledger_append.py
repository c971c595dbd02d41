"""Benchmark: sustained ledger appends/s on SQLite and PostgreSQL, 1 and 4 writers.

Run on demand: ``pytest tests/benchmarks/test_ledger_append.py -s -p no:cacheprovider``
(``PRIVET_BENCH_APPENDS`` events per writer, default 2000; ``PRIVET_BENCH_THREADS``
request threads per writer for the group commit, default 16). Two ways to append:

* **per transaction** (``test_ledger_append_rate``): an append is one event committed
  durably in its own transaction by a writer process (``emit`` + commit), one after another
  -- what an event riding with its own state change costs;
* **group commit** (``test_group_commit_append_rate``): each writer process runs
  ``PRIVET_BENCH_THREADS`` threads (a server's request threads) that each call
  ``append_durable`` in a loop; the process's appender writes whatever is queued in one
  transaction (one durable commit) and returns to every caller once it committed.

Every writer process also runs the background sequencer, as API replicas do. The baseline,
measured once per backend, writer count and durability in the same run on the same
database with the same number of writer processes, is the same durable transactions
without the ledger: one ``session_scope`` transaction inserting one row of an event's size,
one after another. Prints appends/s, the ratio to that baseline, and how far the
sequencer was behind when the writers stopped (integrated count, final drain). No timed
assertion.

Each case runs twice: "durable" (the platform's settings: SQLite synchronous=FULL,
PostgreSQL synchronous_commit=on; an append survives power loss) and "relaxed" (SQLite
synchronous=NORMAL, PostgreSQL synchronous_commit=off, set by the benchmark's writers
only), which removes the per-commit fsync and shows the ledger's own ceiling.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from privet.config import clear_settings_caches
from privet.db import create_db_engine, is_sqlite
from privet.ledger.sequencer import Ledger
from tests.ledger._workers import (
    append_worker,
    group_append_worker,
    raw_commit_worker,
    run_writers,
)

N = int(os.environ.get("PRIVET_BENCH_APPENDS", "2000"))
THREADS = int(os.environ.get("PRIVET_BENCH_THREADS", "16"))
RESULTS: list[str] = []
_BASELINES: dict[tuple[str, int, str], float] = {}


def _run(target, url: str, writers: int, n: int, **kwargs: Any) -> tuple[float, list[dict]]:  # type: ignore[no-untyped-def]
    elapsed, reports, _ = run_writers(
        target, url, writers, n, settle=1.5, timeout=600, join=60, **kwargs
    )
    errors = [e for r in reports for e in r["errors"]]
    assert not errors, errors[:3]
    return elapsed, reports


def _setup(
    db_url: str, writers: int, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, float, int]:
    """The environment of a case: (backend name, baseline transactions/s, appends in all)."""
    if durability == "relaxed":
        monkeypatch.setenv("PRIVET_BENCH_RELAXED", "1")
    monkeypatch.setenv("PRIVET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRIVET_DATABASE_URL", db_url)
    clear_settings_caches()
    backend = "SQLite" if is_sqlite(db_url) else "PostgreSQL"
    return backend, _baseline(db_url, backend, writers, durability), writers * N


def _baseline(db_url: str, backend: str, writers: int, durability: str) -> float:
    """Durable one-row transactions/s without the ledger (measured once per case)."""
    key = (backend, writers, durability)
    if key not in _BASELINES:
        engine = create_db_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_raw"))
            ddl = (
                "CREATE TABLE bench_raw (id INTEGER PRIMARY KEY AUTOINCREMENT, b BLOB, "
                "created_at REAL)"
                if is_sqlite(engine)
                else "CREATE TABLE bench_raw (id BIGSERIAL PRIMARY KEY, b BYTEA, created_at FLOAT8)"
            )
            conn.execute(text(ddl))
        engine.dispose()
        seconds, _ = _run(raw_commit_worker, db_url, writers, N)
        _BASELINES[key] = writers * N / seconds
    return _BASELINES[key]


def _lag(db_url: str, total: int) -> tuple[int, float]:
    """How far the writers' own sequencers were when they stopped: entries integrated
    then, and how long a final ``integrate_now`` needed for the rest."""
    engine = create_db_engine(db_url)
    ledger = Ledger(engine)
    with engine.connect() as conn:
        integrated = int(conn.execute(text("SELECT count(*) FROM ledger_leaves")).scalar_one())
    t = time.perf_counter()
    head = ledger.integrate_now()
    drain = time.perf_counter() - t
    assert head.size == total
    engine.dispose()
    return integrated, drain


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("durability", ["durable", "relaxed"])
@pytest.mark.parametrize("writers", [1, 4])
def test_ledger_append_rate(
    db_url: str, writers: int, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, base_rate, total = _setup(db_url, writers, durability, tmp_path, monkeypatch)
    ledger_s, _ = _run(append_worker, db_url, writers, N)
    rate = total / ledger_s
    integrated_at_end, drain = _lag(db_url, total)
    line = (
        f"{backend:<10} {durability:<7} {writers} writer(s), per transaction: "
        f"{rate:7.0f} appends/s ({rate / base_rate:4.2f}x the same transactions without the "
        f"ledger: {base_rate:.0f}/s); integrated when writers stopped: "
        f"{integrated_at_end}/{total}; final drain {drain * 1000:.0f} ms"
    )
    RESULTS.append(line)
    print("\n" + line)


@pytest.mark.parametrize("durability", ["durable", "relaxed"])
@pytest.mark.parametrize("writers", [1, 4])
def test_group_commit_append_rate(
    db_url: str, writers: int, durability: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, base_rate, total = _setup(db_url, writers, durability, tmp_path, monkeypatch)
    seconds, reports = _run(group_append_worker, db_url, writers, N, threads=THREADS)
    written = [i for r in reports for i in r["ids"]]
    assert len(written) == len(set(written)) == total
    rate = total / seconds
    batches = sum(r["batches"] for r in reports)
    largest = max(r["largest_batch"] for r in reports)
    integrated_at_end, drain = _lag(db_url, total)
    line = (
        f"{backend:<10} {durability:<7} {writers} writer(s) x {THREADS} threads, group "
        f"commit: {rate:7.0f} appends/s ({rate / base_rate:4.2f}x the baseline "
        f"{base_rate:.0f}/s); {batches} commits, {total / batches:.1f} appends each "
        f"(largest {largest}); integrated when writers stopped: {integrated_at_end}/{total}; "
        f"final drain {drain * 1000:.0f} ms"
    )
    RESULTS.append(line)
    print("\n" + line)


def teardown_module() -> None:
    print(f"\n\nledger append benchmark (N = {N} per writer); {_load()}")
    for line in RESULTS:
        print("  " + line)
