"""Benchmark (issue 20): server time of the console's list pages at ``PRIVET_BENCH_ROWS``
(default 1,000) rows of what each lists, through a real `privet serve` (one uvicorn worker,
SQLite), signed in through the sign-in form like a browser. Target in the issue: p50 <=
50 ms on this machine for every page; reported, never asserted.

Run on demand::

    .venv/bin/python -m pytest tests/benchmarks/test_console_pages.py -s -p no:cacheprovider

Each page is read ``PRIVET_BENCH_REPEAT`` (default 21) times over one keep-alive
connection; the benchmark prints p50 and p95 per page and the p50's ratio to the p50 of
``/healthz`` of the same server in the same run. Every page view is also a Cedar decision
and an `auth.decision` event, as in production.

Adding a page: write its seed (a function below that writes its rows through the real
services, registered in ``SEEDS``) if none fits, and add one ``Entry`` to ``PAGES``.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server

ROWS = int(os.environ.get("PRIVET_BENCH_ROWS", "1000"))
REPEAT = int(os.environ.get("PRIVET_BENCH_REPEAT", "21"))
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Entry:
    path: str  # what the browser asks for (paged where the page pages)
    seed: str  # the name of the seed (SEEDS) whose rows it lists


#: One line per page. Pages built later (Datasets, Training, Decisions, Monitoring,
#: Reports, DSR, Admin) add their line here, with a seed in SEEDS if none fits.
PAGES: tuple[Entry, ...] = (
    Entry("/", "versions"),  # Home: projects and the versions waiting for approval
    Entry("/audit?limit=100", "events"),  # first page of the audit log
    Entry("/models", "versions"),  # every version with its card (not paged)
)


@dataclass
class Seeded:
    server: Server
    runtime: Any
    project: str
    viewer_key: str


def _seed_events(seeded: Seeded) -> None:
    """ROWS ledger events of a bank's kinds in the project, through the real emit path."""
    from privet.db import session_scope
    from privet.ledger.emit import EventSpec, emit_many

    events = [
        EventSpec(
            "prediction.made",
            f"prn_app{i % 7}",
            seeded.project,
            {"model_version": "mv_bench", "prediction": f"prd_{i:010d}"},
        )
        for i in range(ROWS)
    ]
    with session_scope(seeded.runtime.engine) as session:
        emit_many(session, events)
    with seeded.server.client() as http:  # the server integrates (and signs) them
        assert http.get("/v1/audit/export").status_code == 200


def _seed_versions(seeded: Seeded) -> None:
    """ROWS candidate model versions (10 models) registered through the model registry."""
    from privet.auth.identity import Identity
    from privet.authorization import principal_ref
    from privet.db import session_scope
    from privet.models import service

    who = Identity(
        principal_id="usr_bench", kind="user", name="", bindings=frozenset(), method="api_key"
    )
    for i in range(ROWS):
        with session_scope(seeded.runtime.engine) as session:
            service.register_version(
                session,
                runtime=seeded.runtime,
                reg=service.Registration(
                    project_id=seeded.project,
                    model_name=f"model-{i % 10}",
                    job_id=f"job_{i:05d}",
                    submitted_by=principal_ref(who),
                    base_model="tiny",
                    base_model_sha256="0" * 64,
                    label_names=["no", "yes"],
                    purposes=["credit_scoring"],
                    dataset_versions=[],
                    private=True,
                    privacy={"epsilon": 3.0, "delta": 1e-5},
                    metrics={"accuracy": 0.81, "macro_f1": 0.79},
                    training={"max_length": 64},
                    weights=b"benchmark",
                    policy_version=None,
                ),
            )


SEEDS: dict[str, Callable[[Seeded], None]] = {
    "events": _seed_events,
    "versions": _seed_versions,
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A server whose project holds ROWS of every seed the pages need, and the key of an
    approver of that project who is also a platform-wide auditor (sees every page)."""
    from privet.auth import service
    from privet.auth.tables import Role
    from privet.config import Settings
    from privet.db import session_scope
    from privet.runtime import build_runtime
    from tests.conftest import mint_key, seed_principal

    server = start_server(tmp_path_factory.mktemp("pages") / "home", args=("--no-worker",))
    try:
        with server.client() as http:
            project = http.post("/v1/projects", json={"name": "loans"}).json()["id"]
        runtime = build_runtime(Settings(home=server.home))
        with session_scope(runtime.engine) as session:
            person = seed_principal(session, "approver", project, "Bench Viewer")
            service.bind_role(
                session, principal_id=person.id, role=Role.auditor, project_id=None, actor=person.id
            )
            key = str(mint_key(session, runtime, person.id, "bench key").key)
        done = Seeded(server, runtime, project, key)
        for name in sorted({entry.seed for entry in PAGES}):
            started = time.perf_counter()
            SEEDS[name](done)
            print(f"\nseed {name}: {ROWS} rows in {time.perf_counter() - started:.1f} s")
        yield done
    finally:
        stop_server(server)


def _signed_in(seeded: Seeded) -> httpx.Client:
    """A client holding a console session, signed in through the form."""
    http = httpx.Client(base_url=seeded.server.url, timeout=120)
    form = http.get("/sign-in")
    match = CSRF_INPUT.search(form.text)
    assert match is not None
    answer = http.post(
        "/sign-in",
        data={"api_key": seeded.viewer_key, "csrf": match.group(1), "next": "/"},
        headers={"Origin": seeded.server.url},
    )
    assert answer.status_code == 303, answer.text[-500:]
    return http


def _p50_p95(http: httpx.Client, path: str) -> tuple[float, float]:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        response = http.get(path)
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (path, response.text[-500:])
    ranked = sorted(times)
    return statistics.median(ranked) * 1000, ranked[max(0, -(-len(ranked) * 95 // 100) - 1)] * 1000


def test_console_list_pages(seeded: Seeded) -> None:
    http = _signed_in(seeded)
    try:
        for entry in PAGES:  # warm: templates compiled, caches filled, pages valid
            assert http.get(entry.path).status_code == 200
        floor, floor95 = _p50_p95(http, "/healthz")
        print(f"\n{'page':<22} {'rows':>6} {'p50 ms':>8} {'p95 ms':>8} {'p50/healthz':>12}")
        print(f"{'/healthz':<22} {'':>6} {floor:>8.1f} {floor95:>8.1f} {1.0:>12.1f}")
        for entry in PAGES:
            p50, p95 = _p50_p95(http, entry.path)
            print(f"{entry.path:<22} {ROWS:>6} {p50:>8.1f} {p95:>8.1f} {p50 / floor:>12.1f}")
    finally:
        http.close()
