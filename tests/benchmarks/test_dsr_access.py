"""Benchmark (issue 20 leftover): a data-subject access request on a project with
``PRIVET_BENCH_DATASETS`` (default 1,000) datasets of 20 rows each, through the API
(in-process app, SQLite and PostgreSQL). Discovery decrypts and scans every active dataset
version holding subject ids, so its time grows with the datasets; its database round
trips must not (tests/compliance/test_discovery_batched.py asserts that). Reported, never
asserted.

Run on demand::

    .venv/bin/python -m pytest tests/benchmarks/test_dsr_access.py -s -p no:cacheprovider

Each backend times ``PRIVET_BENCH_REPEAT`` (default 5) access requests and prints their
p50, min and max, the statements one request runs, and the time of discovery alone
(``privet.compliance.discovery.discover`` called directly, the request's main cost);
``PRIVET_BENCH_PROFILE=path`` writes a cProfile of that call to ``path.<backend>`` (the
request itself runs on the test client's threads, which cProfile does not follow).
"""

from __future__ import annotations

import cProfile
import os
import statistics
import time
from typing import Any

from privet.compliance.discovery import discover
from privet.db import session_scope
from tests.compliance.test_discovery_batched import counted, request_access
from tests.datasets.conftest import declarations, make_rows, to_csv, upload

DATASETS = int(os.environ.get("PRIVET_BENCH_DATASETS", "1000"))
REPEAT = int(os.environ.get("PRIVET_BENCH_REPEAT", "5"))
PROFILE = os.environ.get("PRIVET_BENCH_PROFILE")


def test_access_request_on_many_datasets(client: Any, admin: Any, runtime: Any) -> None:
    made = client.post("/v1/projects", json={"name": "bench"}, headers=admin.headers)
    project = made.json()["id"]
    content = to_csv(make_rows(20))
    started = time.perf_counter()
    for i in range(DATASETS):
        decl = declarations(name=f"ds-{i}")
        made = upload(client, admin.headers, project, content, decl=decl)
        assert made.status_code == 201, made.text
    seeded = time.perf_counter() - started
    times = []
    for i in range(REPEAT):
        t0 = time.perf_counter()
        body = request_access(client, admin, "cust-00003")
        times.append((time.perf_counter() - t0) * 1000)
        assert len(body["result"]["findings"]["dataset_versions"]) == DATASETS
    with counted(runtime.engine) as statements:
        request_access(client, admin, "cust-00004")
    backend = runtime.engine.dialect.name
    alone = []
    with session_scope(runtime.engine) as session:
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            discover(session, runtime=runtime, subject_id="cust-00005")
            alone.append((time.perf_counter() - t0) * 1000)
        if PROFILE:
            with cProfile.Profile() as profile:
                discover(session, runtime=runtime, subject_id="cust-00005")
            profile.dump_stats(f"{PROFILE}.{backend}")
    print(
        f"\n{backend}: {DATASETS} datasets (seeded in {seeded:.0f} s), access request "
        f"p50 {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f} "
        f"({REPEAT} requests), {len(statements)} statements a request; "
        f"discovery alone p50 {statistics.median(alone):.1f} ms, min {min(alone):.1f}"
    )
