"""Benchmark (issue 20): server time of the console's list pages at ``PRIVET_BENCH_ROWS``
(default 1,000) rows of what each lists, through a real `privet serve` (one uvicorn worker,
SQLite), signed in through the sign-in form like a browser. Target in the issue: p50 <=
50 ms on this machine for every page; reported, never asserted.

Run on demand::

    .venv/bin/python -m pytest tests/benchmarks/test_console_pages.py -s -p no:cacheprovider

Each page is read ``PRIVET_BENCH_REPEAT`` (default 21) times over one keep-alive
connection; the benchmark prints p50 and p95 per page and the p50's ratio to the p50 of
``/healthz`` of the same server in the same run, and the ledger events one view writes
(every page view is Cedar decisions, each an `auth.decision` event, as in production).
``PRIVET_BENCH_PAGES=/,/models`` measures only those pages (and seeds only their rows).

Adding a page: write its seed (in console_seeds.py: it writes its rows through the real
services, registered in ``SEEDS``) if none fits, and add one ``Entry`` to ``PAGES``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.benchmarks.console_seeds import SEEDS, Seeded
from tests.console.support import signed_in
from tests.e2e.conftest import start_server, stop_server

ROWS = int(os.environ.get("PRIVET_BENCH_ROWS", "1000"))
REPEAT = int(os.environ.get("PRIVET_BENCH_REPEAT", "21"))


@dataclass(frozen=True)
class Entry:
    path: str  # what the browser asks for; {project} and {job} from the seeds' ids
    seed: str  # the name of the seed (SEEDS) whose rows it lists
    htmx: bool = False  # asked as htmx asks for a fragment (HX-Request)


#: One line per page: each list page's first page (paged, keyset, as the browser opens
#: it), and the job page's live-update fragment (the htmx poll).
PAGES: tuple[Entry, ...] = (
    Entry("/", "versions"),  # Home: projects and the newest versions awaiting approval
    Entry("/datasets", "datasets"),
    Entry("/training", "jobs"),
    Entry("/training/{project}/{job}", "jobs", htmx=True),  # one poll of a job's progress
    Entry("/models", "versions"),
    Entry("/decisions", "queue"),
    Entry("/monitoring", "served"),
    Entry("/requests", "requests"),
    Entry("/reports", "events"),  # kinds x scopes: not a list that grows with rows
    Entry("/audit?limit=100", "events"),
    Entry("/admin", "members"),
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A server whose project holds ROWS of every seed the pages need, and the key of an
    approver of that project who is also a platform-wide auditor and data steward (sees
    every page). PRIVET_BENCH_PAGES (comma-separated paths) keeps only those pages."""
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
            for role in (Role.auditor, Role.data_steward):
                service.bind_role(
                    session, principal_id=person.id, role=role, project_id=None, actor=person.id
                )
            key = str(mint_key(session, runtime, person.id, "bench key").key)
        done = Seeded(
            server, runtime, project, key, ROWS, {"project": project, "viewer": person.id}
        )
        wanted = {entry.seed for entry in _pages()}
        for name in [n for n in SEEDS if n in wanted]:  # in SEEDS' order
            started = time.perf_counter()
            SEEDS[name](done)
            print(f"\nseed {name}: {ROWS} rows in {time.perf_counter() - started:.1f} s")
        yield done
    finally:
        stop_server(server)


def _pages() -> list[Entry]:
    wanted = [p for p in os.environ.get("PRIVET_BENCH_PAGES", "").split(",") if p]
    return [e for e in PAGES if not wanted or e.path in wanted]


def _p50_p95(http: httpx.Client, path: str, headers: dict[str, str]) -> tuple[float, float]:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        response = http.get(path, headers=headers)
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (path, response.text[-500:])
    ranked = sorted(times)
    return statistics.median(ranked) * 1000, ranked[max(0, -(-len(ranked) * 95 // 100) - 1)] * 1000


def _ledger_size(seeded: Seeded) -> int:
    from sqlalchemy import func
    from sqlmodel import Session, select

    from privet.ledger.tables import LedgerEntry

    with Session(seeded.runtime.engine) as session:
        return int(session.exec(select(func.count()).select_from(LedgerEntry)).one())


def test_console_list_pages(seeded: Seeded) -> None:
    http = signed_in(seeded.server.url, seeded.viewer_key)
    pages = [
        (e, e.path.format(**seeded.ids), {"HX-Request": "true"} if e.htmx else {}) for e in _pages()
    ]
    try:
        for _entry, path, headers in pages:  # warm: templates compiled, caches filled
            assert http.get(path, headers=headers).status_code == 200
        floor, floor95 = _p50_p95(http, "/healthz", {})
        head = ("page", "rows", "p50 ms", "p95 ms", "p50/healthz", "events/view")
        print("\n{:<30} {:>6} {:>8} {:>8} {:>12} {:>12}".format(*head))
        print(f"{'/healthz':<30} {'':>6} {floor:>8.1f} {floor95:>8.1f} {1.0:>12.1f}")
        for entry, path, headers in pages:
            before = _ledger_size(seeded)
            p50, p95 = _p50_p95(http, path, headers)
            written = (_ledger_size(seeded) - before) / REPEAT  # Cedar decisions, ledgered
            name = entry.path + (" (htmx)" if entry.htmx else "")
            ratio = p50 / floor
            print(f"{name:<30} {ROWS:>6} {p50:>8.1f} {p95:>8.1f} {ratio:>12.1f} {written:>12.1f}")
    finally:
        http.close()
