"""Authenticated, audited GET throughput under concurrent clients (issue 23), on demand:

    .venv/bin/python -m pytest tests/benchmarks/test_gateway_concurrency.py -s
    (PRIVET_BENCH_CLIENTS=1,4,16,64 PRIVET_BENCH_SECONDS=8 PRIVET_BENCH_BACKENDS=sqlite,postgresql)

A real `privet serve` (one uvicorn worker, no training worker) on SQLite and on a scratch
PostgreSQL database. For each client count, in the same run against the same server, a
closed-loop load generator in its own process (`load.measure`: N connections, each sending
its next request when the last answered; `wrk` when installed, `apt-get install wrk`, else
a Python httpx generator that is itself the bottleneck at 16-64 clients on a small machine,
PRIVET_BENCH_GENERATOR=httpx|wrk forces one) times:

- baseline: `GET /healthz` (no authentication, no database);
- audited: `GET /v1/projects/{id}` with an API key: authentication, Cedar decision, a
  database read, and the decision written durably to the ledger before the response.

Prints requests/s of each, their ratio (target >= 0.5 at 16 clients), p50/p99 latency
(target p99 <= 1 s at 64 clients), errors, the load average and the generator. Nothing is
asserted about time; the test asserts only that no request failed and that every audited
request's decision is in the ledger.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.benchmarks.load import measure
from tests.e2e.conftest import start_server, stop_server


@pytest.mark.parametrize(
    "backend", os.environ.get("PRIVET_BENCH_BACKENDS", "sqlite,postgresql").split(",")
)
def test_audited_get_throughput(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clients = [int(c) for c in os.environ.get("PRIVET_BENCH_CLIENTS", "1,4,16,64").split(",")]
    seconds = float(os.environ.get("PRIVET_BENCH_SECONDS", "8"))
    url = None if backend == "sqlite" else request.getfixturevalue("pg_database").fresh()
    env = {"PRIVET_DATABASE_URL": url} if url else {}
    server = start_server(tmp_path / "home", env=env, args=("--no-worker",))
    try:
        with server.client() as admin:
            project = admin.post("/v1/projects", json={"name": "bench"}).json()["id"]
            audited = f"/v1/projects/{project}"
            before = _decisions(admin, project)
            total = 0
            print(
                f"\n{backend}: clients  healthz/s  audited/s  ratio  p50 ms  p99 ms  errors  load"
            )
            for n in clients:
                base = measure(server.url, "/healthz", "", n, seconds)
                got = measure(server.url, audited, server.admin_key, n, seconds)
                total += got.requests + 1  # + the warm-up request
                print(
                    f"{backend}: {n:7d}  {base.rps:9.0f}  {got.rps:9.0f}  "
                    f"{got.rps / base.rps:5.2f}  {got.p50_ms:6.1f}  {got.p99_ms:6.0f}  "
                    f"{got.errors + base.errors:6d}  {_load_average()}  ({got.generator})"
                )
                assert got.errors == 0 and base.errors == 0
            assert _wait_for(admin, project, before + total) >= before + total
    finally:
        stop_server(server)


def _load_average() -> str:
    """The one-minute load average, printed beside every figure (the machine is shared)."""
    return Path("/proc/loadavg").read_text().split()[0]


def _decisions(admin: httpx.Client, project: str) -> int:
    """Leaves in the ledger (each audited request adds its decision; /healthz adds none)."""
    response = admin.get("/v1/audit/events", params={"limit": 1})
    response.raise_for_status()
    return int(response.json()["tree_size"])


def _wait_for(admin: httpx.Client, project: str, at_least: int) -> int:
    """The tree size once the sequencer has integrated `at_least` leaves (or 60 s passed)."""
    deadline = time.monotonic() + 60
    size = _decisions(admin, project)
    while size < at_least and time.monotonic() < deadline:
        time.sleep(0.5)
        size = _decisions(admin, project)
    return size
