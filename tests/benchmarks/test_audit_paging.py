"""Benchmark: GET /v1/audit/events at the first, middle and last page of a large log, with
each filter the API offers and none, through a real gateway (`privet serve`, one uvicorn
worker, on the same database and home).

Run on demand (SQLite; ``-k postgres`` for PostgreSQL)::

    PRIVET_BENCH_EVENTS=100000 pytest tests/benchmarks/test_audit_paging.py -s \
        -p no:cacheprovider -n 0 -k sqlite

``PRIVET_BENCH_EVENTS`` (default 10,000) events are written in batches of
``PRIVET_BENCH_BATCH`` (default 5,000) through the real emit path (``emit_many`` in one
transaction per batch, then the sequencer integrates them), shaped like a bank's log: nine
in ten ``prediction.made`` in one busy project, the rest spread over other types, 200
projects and 1,000 actors. Each page is read ``PRIVET_BENCH_REPEAT`` (default 21) times
over HTTP (one keep-alive connection); the benchmark prints the p50 and p95 per page and
the p50's ratio to the p50 of an unauthenticated ``/healthz`` of the same server in the
same run (the floor of any request), and the p50 and p95 of the service's query alone
(``list_events`` in a read session of the test process: no HTTP, no authorization).
Every audited GET also appends its own authorization decision, as in production. On
PostgreSQL the seeded tables are ANALYZEd before the reads, as autovacuum would within a
minute. No timed assertion.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from privet.db import is_sqlite, read_session, session_scope
from privet.kit.ids import utcnow
from privet.ledger import queries
from privet.ledger.emit import EventSpec, emit_many
from privet.ledger.sequencer import integrate_now
from privet.ledger.tables import LedgerLeaf
from tests.benchmarks.seeded import SeededLedger
from tests.e2e.conftest import start_server, stop_server

N = int(os.environ.get("PRIVET_BENCH_EVENTS", "10000"))
BATCH = int(os.environ.get("PRIVET_BENCH_BATCH", "5000"))
REPEAT = int(os.environ.get("PRIVET_BENCH_REPEAT", "21"))
LIMIT = 100


def _event(i: int, busy: str, rare: str) -> EventSpec:
    if i % 10:
        return EventSpec(
            "prediction.made",
            f"prn_app{i % 7}",
            busy,
            {"model_version": "mv_0003", "prediction": f"prd_{i:010d}"},
            {"input": "hmac-sha256:" + f"{i * 2654435761:064x}"[-64:]},
            "ok",
            {"label": "accept", "purpose": "credit_decision"},
        )
    return EventSpec(
        f"bench.kind{i % 40}",
        f"prn_{i % 1000:04d}",
        rare if i % 200 == 30 else f"prj_{i % 200:03d}",
        {"object": f"obj_{i // 3:09d}"},
    )


def _seed(engine: Any, busy: str, rare: str) -> tuple[float, datetime]:
    """Write N events in batches; the seconds it took and the time half were written."""
    started = time.perf_counter()
    half = utcnow()
    for start in range(0, N, BATCH):
        if start <= N // 2 < start + BATCH:
            half = utcnow()
        with session_scope(engine) as session:
            events = [_event(i, busy, rare) for i in range(start, min(N, start + BATCH))]
            emit_many(session, events)
        integrate_now(engine)
    return time.perf_counter() - started, half


def _p50_p95(times: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms (p95: the nearest rank, the 20th of 21)."""
    ranked = sorted(times)
    return statistics.median(ranked) * 1000, ranked[max(0, -(-len(ranked) * 95 // 100) - 1)] * 1000


def _http(get: Any) -> tuple[float, float]:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        response = get()
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    return _p50_p95(times)


def _query(engine: Any, query: dict[str, Any]) -> tuple[float, float]:
    """The service call alone (no HTTP, no authorization, no decision event)."""
    params = dict(query)
    for name in ("since", "until"):
        if name in params:
            params[name] = datetime.fromisoformat(params[name])
    times = []
    for _ in range(REPEAT):
        with read_session(engine) as session:
            t0 = time.perf_counter()
            queries.list_events(session=session, **params)
            times.append(time.perf_counter() - t0)
    return _p50_p95(times)


@pytest.fixture
def gateway(
    runtime: Any, admin: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Any]]:
    """A real `privet serve` on the test's database and home, and a client with the
    bootstrap admin's key; this process's ledger (the seed's sequencer) signs with the
    same home's key."""
    from privet.config import clear_settings_caches

    monkeypatch.setenv("PRIVET_HOME", str(runtime.settings.home))
    monkeypatch.setenv("PRIVET_DATABASE_URL", db_url)
    clear_settings_caches()
    server = start_server(
        runtime.settings.home, env={"PRIVET_DATABASE_URL": db_url}, args=("--no-worker",)
    )
    try:
        with httpx.Client(base_url=server.url, headers=admin.headers, timeout=120) as client:
            yield runtime, client
    finally:
        stop_server(server)


def test_audit_event_pages(gateway: tuple[Any, Any], tmp_path: Path) -> None:
    runtime, client = gateway
    busy, rare = (
        client.post("/v1/projects", json={"name": name}).json()["id"] for name in ("busy", "rare")
    )
    seconds, half = _seed(runtime.engine, busy, rare)
    if not is_sqlite(runtime.engine.url):
        # what autovacuum does within a minute of a bulk load: without statistics the
        # planner takes a common type for a rare one and sorts all its rows (docs/SCALING.md)
        with runtime.engine.begin() as conn:  # committed: a rolled-back ANALYZE keeps nothing
            conn.execute(text("ANALYZE"))
    size = client.get("/v1/audit/events?limit=1").json()["tree_size"]
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "type=prediction.made": {"type": "prediction.made"},
        "type=bench.kind20 (rare)": {"type": "bench.kind20"},
        "project=busy": {"project": busy},
        "project=rare": {"project": rare},
        "actor=prn_0470 (rare)": {"actor": "prn_0470"},
        "object_id": {"object_id": f"obj_{N // 6:09d}"},
        "since=half-way": {"since": half.isoformat()},
        "until=half-way": {"until": half.isoformat()},
    }
    title = (
        f"audit events paging, {N} events seeded in {seconds:.1f} s "
        f"({N / seconds:,.0f}/s), tree size {size}"
    )
    print("\n" + "\n".join(_measure(client, runtime.engine, filters, size, title)))


def _measure(
    client: Any, engine: Any, filters: dict[str, dict[str, Any]], size: int, title: str
) -> list[str]:
    """The table: p50/p95 over HTTP and of the query alone, first, middle and last page."""
    healthz, healthz95 = _http(lambda: client.get("/healthz"))
    pages = {"first": 0, "middle": size // 2, "last": max(0, size - LIMIT)}
    lines = [
        f"{title}, {REPEAT} reads per page, limit {LIMIT}",
        f"baseline /healthz p50 {healthz:.2f} ms, p95 {healthz95:.2f} ms",
        f"{'filter':28} {'page':7} {'p50 ms':>8} {'p95 ms':>8} {'x healthz':>10} "
        f"{'query p50':>9} {'query p95':>9} {'rows':>5}",
    ]
    for name, params in filters.items():
        for page, start in pages.items():
            query = {**params, "start": start, "limit": LIMIT}

            def get(query: dict[str, Any] = query) -> Any:
                return client.get("/v1/audit/events", params=query)

            p50, p95 = _http(get)
            rows = len(get().json()["items"])
            q50, q95 = _query(engine, query)
            lines.append(
                f"{name:28} {page:7} {p50:8.2f} {p95:8.2f} {p50 / healthz:10.1f} "
                f"{q50:9.2f} {q95:9.2f} {rows:5d}"
            )
    return lines


def test_audit_event_pages_of_a_seeded_year(
    seeded_ledger: SeededLedger, seeded_copy: str, tmp_path: Path
) -> None:
    """The same pages on a copy of the seeded year (tests/benchmarks/seeded.py: a bank's
    traffic, event times over 2026, bootstrap events stamped at the seed's own time):
    windows at the middle leaf's time, a day from it, and with a type."""
    from privet.config import Settings
    from privet.db import dispose_engines
    from privet.runtime import build_runtime
    from tests.conftest import bootstrap_admin_key

    home = tmp_path / "home"
    shutil.copytree(seeded_ledger.home, home)
    runtime = build_runtime(Settings(home=home, database_url=seeded_copy))
    admin = bootstrap_admin_key(runtime, "bench")
    if not is_sqlite(runtime.engine.url):
        with runtime.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    with runtime.engine.connect() as conn:
        size = int(conn.execute(text("SELECT count(*) FROM ledger_leaves")).scalar_one())
        half = conn.execute(
            select(LedgerLeaf.event_time).where(LedgerLeaf.idx == size // 2)  # type: ignore[arg-type]
        ).scalar_one()
    day = half + timedelta(days=1)
    filters: dict[str, dict[str, Any]] = {
        "none": {},
        "type=prediction.made": {"type": "prediction.made"},
        "since=half-way": {"since": half.isoformat()},
        "until=half-way": {"until": half.isoformat()},
        "since..until one day": {"since": half.isoformat(), "until": day.isoformat()},
        "since + type=dsr.received": {"since": half.isoformat(), "type": "dsr.received"},
    }
    server = start_server(home, env={"PRIVET_DATABASE_URL": seeded_copy}, args=("--no-worker",))
    try:
        with httpx.Client(base_url=server.url, headers=admin.headers, timeout=120) as client:
            title = f"audit events paging, seeded year ({seeded_ledger.backend}), size {size}"
            print("\n" + "\n".join(_measure(client, runtime.engine, filters, size, title)))
    finally:
        stop_server(server)
        dispose_engines()
