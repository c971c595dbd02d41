"""Several gateway replicas on one PostgreSQL database behave as one system (issue 11,
item 3): two `privet serve --no-worker` processes and two `privet worker` processes share
one database and one blob store. 20 training jobs and 2,000 predictions are submitted
across both gateways; every job runs exactly once (one start, one registered version),
every prediction has exactly one ledger event, `privet audit verify` passes, and an API
key revoked on one gateway is refused by the other at once.

Needs PostgreSQL (PRIVET_TEST_PG, as the other database tests); about 2-3 minutes here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.datasets.conftest import WORDS, declarations, make_rows, to_csv, upload
from tests.e2e.conftest import (
    PRIVET,
    Server,
    named_person_key,
    start_server,
    stop_server,
    tiny_catalog_file,
)

TINY = "tiny-replicas"
JOBS = 20
PREDICTIONS = 2000
ITEMS_PER_REQUEST = 20
PURPOSE = "credit_scoring"


@pytest.fixture(scope="module")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_catalog_file(tmp_path_factory.mktemp("tiny-replicas"), TINY)


@pytest.fixture
def database_url(pg_database: Any) -> str:
    return str(pg_database.fresh())


def _env(home: Path, database_url: str, catalog: Path) -> dict[str, str]:
    return {
        "PRIVET_DATABASE_URL": database_url,
        "PRIVET_JOBS_EXTRA_CATALOG": str(catalog),
        "PRIVET_JOBS_HEARTBEAT_INTERVAL_S": "0.5",
        "PRIVET_JOBS_POLL_INTERVAL_S": "0.3",
        "PRIVET_LEDGER_POLL_INTERVAL_S": "0.2",
        "PRIVET_EXECUTOR": "local",
    }


def _start_worker(home: Path, env: dict[str, str], name: str) -> subprocess.Popen[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")}
    log = (home.parent / f"{name}.log").open("w")
    return subprocess.Popen(
        [PRIVET, "worker", "--worker-id", name],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**inherited, "PRIVET_HOME": str(home), "HF_HUB_OFFLINE": "1", **env},
        text=True,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def cluster(
    tmp_path: Path, database_url: str, tiny_catalog: Path
) -> Iterator[tuple[Server, Server, Path, dict[str, str]]]:
    """Gateway A (initialises the database and keys), gateway B on the same database and
    key material, and two standalone workers."""
    home = tmp_path / "home"
    env = _env(home, database_url, tiny_catalog)
    started: list[Any] = []
    try:
        a = start_server(home, env=env, args=("--no-worker",))
        started.append(a)
        b = start_server(home, env=env, args=("--no-worker",))
        started.append(b)
        b.admin_key = a.admin_key
        for name in ("worker-1", "worker-2"):
            started.append(_start_worker(home, env, name))
        yield a, b, home, env
    finally:
        for item in reversed(started):
            if isinstance(item, Server):
                stop_server(item)
            else:
                _stop(item)


def _member(http: httpx.Client, project: str, role: str) -> tuple[str, str]:
    binding = http.post(
        f"/v1/projects/{project}/members",
        json={"service_account_name": f"{role}-bot", "role": role},
    )
    assert binding.status_code == 201, binding.text
    principal = binding.json()["principal_id"]
    return principal, _key(http, principal, project, role)


def _key(http: httpx.Client, principal: str, project: str, name: str) -> str:
    key = http.post(
        "/v1/api-keys", json={"name": name, "principal_id": principal, "project_id": project}
    )
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


def _ledger(database_url: str) -> list[dict[str, Any]]:
    from sqlalchemy import text

    from privet.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT event FROM ledger_entries ORDER BY id")).scalars()
            return [json.loads(r) for r in rows]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_gateways_and_two_workers_behave_as_one_system(cluster: Any) -> None:
    a, b, home, env = cluster
    gateways = (a, b)
    t0 = time.monotonic()
    with a.client() as http:
        project = http.post("/v1/projects", json={"name": "replicas"}).json()["id"]
        _, engineer = _member(http, project, "ml_engineer")
        # A named person approves (never a service account, nor the admin behind them).
        approver = named_person_key(
            home, project, "approver", name="risk-officer", database_url=env["PRIVET_DATABASE_URL"]
        )
        predictor_id, predictor = _member(http, project, "predictor")
        decl = declarations(privacy_budget={"epsilon_total": 25.0, "delta": 1e-5})
        uploaded = upload(http, None, project, to_csv(make_rows(40)), decl=decl)
        assert uploaded.status_code == 201, uploaded.text
        version = uploaded.json()["id"]

    # 20 jobs, alternating between the gateways.
    body = {
        "dataset_version_id": version,
        "base_model": TINY,
        "target_epsilon": 1.0,
        "strategy": "full",
        "epochs": 1,
        "batch_size": 20,
        "physical_batch_size": 20,
        "max_length": 16,
        "learning_rate": 0.01,
    }
    job_ids = []
    for i in range(JOBS):
        gateway = gateways[i % 2]
        with gateway.client(engineer) as http:
            r = http.post(f"/v1/projects/{project}/training-jobs", json=body)
        assert r.status_code == 201, r.text
        job_ids.append(r.json()["id"])

    deadline = time.monotonic() + 240
    jobs: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        with b.client(engineer) as http:
            for job_id in job_ids:
                if job_id not in jobs:
                    job = http.get(f"/v1/projects/{project}/training-jobs/{job_id}").json()
                    if job["state"] in ("succeeded", "failed", "cancelled"):
                        jobs[job_id] = job
        if len(jobs) == JOBS:
            break
        time.sleep(0.5)
    assert len(jobs) == JOBS, f"{JOBS - len(jobs)} job(s) unfinished"
    assert {j["state"] for j in jobs.values()} == {"succeeded"}, [
        j["reason"] for j in jobs.values() if j["state"] != "succeeded"
    ]
    by_worker = Counter(str(j["worker_id"]) for j in jobs.values())
    assert set(by_worker) <= {"worker-1", "worker-2"}
    jobs_done = time.monotonic() - t0

    # Approve the first job's model; 2,000 predictions across both gateways.
    first = jobs[job_ids[0]]["model_version_id"]
    with a.client(approver) as http:
        ok = http.post(f"/v1/projects/{project}/model-versions/{first}:approve")
    assert ok.status_code == 200, ok.text
    with b.client(engineer) as http:
        info = http.get(f"/v1/projects/{project}/model-versions/{first}").json()
    path = f"/v1/projects/{project}/models/{info['model_name']}/versions/{info['number']}:predict"

    def predict(i: int) -> list[str]:
        gateway = gateways[i % 2]
        items = [
            {"text": f"{WORDS[(i + k) % len(WORDS)]} loan {k}", "purpose": PURPOSE}
            for k in range(ITEMS_PER_REQUEST)
        ]
        with gateway.client(predictor) as http:
            r = http.post(path, json={"items": items})
        assert r.status_code == 200, r.text
        return [p["prediction_id"] for p in r.json()["predictions"]]

    with ThreadPoolExecutor(max_workers=8) as pool:
        prediction_ids = [
            pid for ids in pool.map(predict, range(PREDICTIONS // ITEMS_PER_REQUEST)) for pid in ids
        ]
    assert len(prediction_ids) == len(set(prediction_ids)) == PREDICTIONS

    # A key revoked on gateway A is refused by gateway B at once.
    with a.client() as http:
        extra = http.post(
            "/v1/api-keys",
            json={"name": "short-lived", "principal_id": predictor_id, "project_id": project},
        ).json()
    item = {"items": [{"text": "late payment", "purpose": PURPOSE}]}
    with b.client(extra["key"]) as http:
        assert http.post(path, json=item).status_code == 200
    with a.client() as http:
        assert http.delete(f"/v1/api-keys/{extra['id']}").status_code == 200
    with b.client(extra["key"]) as http:
        refused = http.post(path, json=item)
    assert refused.status_code == 401, refused.text

    # Every job ran exactly once; every prediction has exactly one ledger event.
    events = _ledger(env["PRIVET_DATABASE_URL"])
    per_job: dict[str, Counter[str]] = {j: Counter() for j in job_ids}
    for e in events:
        job = e["objects"].get("training_job")
        if job in per_job:
            per_job[job][e["type"]] += 1
    for job_id, counts in per_job.items():
        assert counts["training_job.started"] == 1, (job_id, counts)
        assert counts["training_job.succeeded"] == 1, (job_id, counts)
    registered = Counter(
        e["objects"].get("model_version") for e in events if e["type"] == "model_version.registered"
    )
    assert sorted(registered) == sorted(j["model_version_id"] for j in jobs.values())
    assert set(registered.values()) == {1}
    made = Counter(e["objects"]["prediction"] for e in events if e["type"] == "prediction.made")
    assert set(made) >= set(prediction_ids)
    assert all(made[p] == 1 for p in prediction_ids)
    assert len(made) == PREDICTIONS + 1  # and the one made with the short-lived key

    # One consistent tree: the CLI verifies every entry, hash, checkpoint and root.
    deadline = time.monotonic() + 60
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PRIVET_")}
    while True:
        verify = subprocess.run(
            [PRIVET, "audit", "verify", "--json"],
            env={**inherited, "PRIVET_HOME": str(home), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "{" in verify.stdout, verify.stdout + verify.stderr
        report = json.loads(verify.stdout[verify.stdout.index("{") :])
        if verify.returncode == 0 and report["tree_size"] >= len(events):
            break
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert time.monotonic() < deadline, report
        time.sleep(1)
    print(
        f"\n{JOBS} jobs in {jobs_done:.1f} s (by worker: {dict(by_worker)}); "
        f"{PREDICTIONS} predictions; {len(events)} ledger entries verified; "
        f"total {time.monotonic() - t0:.1f} s"
    )


def test_privet_worker_trains_on_ray_when_ray_address_is_set(
    tmp_path: Path, tiny_catalog: Path
) -> None:
    """`privet worker` with PRIVET_RAY_ADDRESS=local (a private Ray instance inside the
    worker) runs a job as 2 data-parallel Ray processes, through the same job life cycle."""
    pytest.importorskip("ray")
    home = tmp_path / "home"
    env = {
        "PRIVET_JOBS_EXTRA_CATALOG": str(tiny_catalog),
        "PRIVET_JOBS_HEARTBEAT_INTERVAL_S": "0.5",
        "PRIVET_JOBS_POLL_INTERVAL_S": "0.3",
        "PRIVET_LEDGER_POLL_INTERVAL_S": "0.2",
    }
    server = start_server(home, env=env, args=("--no-worker",))
    worker = None
    try:
        worker = _start_worker(
            home,
            {**env, "PRIVET_RAY_ADDRESS": "local", "PRIVET_RAY_DEFAULT_WORKERS": "2"},
            "ray-worker",
        )
        with server.client() as http:
            project = http.post("/v1/projects", json={"name": "ray"}).json()["id"]
            _, engineer = _member(http, project, "ml_engineer")
            uploaded = upload(http, None, project, to_csv(make_rows(40)))
            assert uploaded.status_code == 201, uploaded.text
        body = {
            "dataset_version_id": uploaded.json()["id"],
            "base_model": TINY,
            "target_epsilon": 2.0,
            "strategy": "full",
            "epochs": 1,
            "batch_size": 10,
            "physical_batch_size": 10,
            "max_length": 16,
        }
        with server.client(engineer) as http:
            job = http.post(f"/v1/projects/{project}/training-jobs", json=body).json()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                job = http.get(f"/v1/projects/{project}/training-jobs/{job['id']}").json()
                if job["state"] not in ("queued", "running"):
                    break
                time.sleep(0.5)
        log = (home.parent / "ray-worker.log").read_text(errors="replace")
        assert job["state"] == "succeeded", (job, log[-3000:])
        assert job["worker_id"] == "ray-worker"
        assert job["progress"]["step"] == job["progress"]["total_steps"] > 0
        assert (
            job["result"]["privacy"]["sample_rate"]
            == 10 / job["result"]["training"]["train_examples"]
        )
        assert "run on the ray executor" in log, log[-3000:]
    finally:
        if worker is not None:
            _stop(worker)
        stop_server(server)
