"""Fixtures for job, worker and registry tests: a tiny pinned BERT on the allow-list, a
project with an engineer and an approver, and an uploaded dataset version."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.conftest import WORDS, declarations, make_rows, to_csv, upload

TINY = "tiny-test"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny BERT registered as `tiny-test`, mean-pooled like the shipped MiniLM-L6; yields
    the extra-catalog file naming it."""
    from privet.jobs.catalog import write_catalog_file
    from privet.training.catalog import CATALOG, build_tiny_bert

    root = tmp_path_factory.mktemp("tiny-bert")
    spec = build_tiny_bert(
        root / "model", name=TINY, words=WORDS, max_position_embeddings=64, pooling="mean"
    )
    CATALOG.register(spec, replace=True)
    yield write_catalog_file(root / "catalog.json", [spec])
    CATALOG.unregister(TINY)


@pytest.fixture
def job_settings(tiny_model: Path):  # type: ignore[no-untyped-def]
    from privet.jobs.settings import JobSettings

    return JobSettings(
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=30,
        poll_interval_s=0.1,
        secure_noise=False,
        extra_catalog=tiny_model,
    )


@pytest.fixture
def make_worker(runtime, job_settings) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    from privet.jobs.worker import Worker

    def make(worker_id: str | None = None, **overrides: Any) -> Worker:
        settings = job_settings.model_copy(update=overrides)
        return Worker(runtime, worker_id=worker_id, settings=settings)

    return make


@pytest.fixture
def project(client, admin, tiny_model) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": "credit"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def engineer(make_caller, project):  # type: ignore[no-untyped-def]
    return make_caller("ml_engineer", project, name="engineer")


@pytest.fixture
def approver(make_caller, project):  # type: ignore[no-untyped-def]
    return make_caller("approver", project, name="approver")


def upload_version(
    client: Any, admin: Any, project: str, *, n: int = 60, epsilon_total: float = 8.0, **decl: Any
) -> dict[str, Any]:
    body = declarations(privacy_budget={"epsilon_total": epsilon_total, "delta": 1e-5}, **decl)
    response = upload(client, admin.headers, project, to_csv(make_rows(n)), decl=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def dataset_version(client, admin, project) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return upload_version(client, admin, project)


def job_body(version_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset_version_id": version_id,
        "base_model": TINY,
        "target_epsilon": 3.0,
        "strategy": "full",
        "epochs": 2,
        "batch_size": 16,
        "physical_batch_size": 16,
        "max_length": 16,
        "learning_rate": 0.01,
    }
    body.update(overrides)
    return body


def submit(client: Any, caller: Any, project: str, version_id: str, **overrides: Any) -> Any:
    return client.post(
        f"/v1/projects/{project}/training-jobs",
        json=job_body(version_id, **overrides),
        headers=caller.headers,
    )


TRAINED = [
    "training_job.submitted",
    "training_job.admitted",
    "privacy_budget.reserved",
    "privacy_budget.charged",
    "training_job.started",
    "training_job.succeeded",
    "model_version.registered",
]
"""The ledger events of a job that trained and registered its version, in order."""
CANCELLED = ["training_job.cancel_requested", "training_job.cancelled"]
"""The last ledger events of a job cancelled while it ran."""
LONG_JOB = {"epochs": 100, "batch_size": 4, "physical_batch_size": 4}
"""Overrides for a job that trains long enough to be cancelled mid-way."""


def get_job(client: Any, caller: Any, project: str, job_id: str) -> Any:
    return client.get(
        f"/v1/projects/{project}/training-jobs/{job_id}", headers=caller.headers
    ).json()


def wait_until_stepping(
    client: Any, caller: Any, project: str, job_id: str, *, timeout: float, poll: float
) -> None:
    """Until the job runs and has taken a step (so a cancel reaches a training loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = get_job(client, caller, project, job_id)
        if state["state"] == "running" and state["progress"].get("step", 0) > 0:
            return
        time.sleep(poll)
    raise AssertionError("the job never made progress")


def cancel_once_stepping(
    client: Any,
    caller: Any,
    project: str,
    job_id: str,
    worker: Any,
    *,
    timeout: float,
    poll: float,
    join: float,
) -> tuple[Any, float]:
    """Run ``worker.tick()`` in a thread and ask to cancel the job once it is stepping: the
    cancel response and the seconds from asking until the worker returned."""
    thread = threading.Thread(target=worker.tick)
    thread.start()
    try:
        wait_until_stepping(client, caller, project, job_id, timeout=timeout, poll=poll)
        asked = time.monotonic()
        response = client.post(
            f"/v1/projects/{project}/training-jobs/{job_id}:cancel", headers=caller.headers
        )
        thread.join(timeout=join)
        took = time.monotonic() - asked
    finally:
        worker.stop()
        thread.join(timeout=join)
    return response, took


def race(n: int, attempt: Callable[[int], None], *, refused: type[Exception]) -> list[str]:
    """``attempt(0)`` … ``attempt(n - 1)`` in ``n`` threads released together: the sorted
    outcomes, "ok" for each that returned and "refused" for each that raised ``refused``."""
    outcomes: list[str] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        try:
            attempt(i)
            outcomes.append("ok")
        except refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return sorted(outcomes)


def ledger_events(runtime: Any, *, project: str | None = None) -> list[dict[str, Any]]:
    """Every ledger entry (integrated or not) in allocation order."""
    from sqlmodel import Session, col, select

    from privet.ledger.tables import LedgerEntry

    with Session(runtime.engine) as session:
        rows = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.id))).all()
        events = [json.loads(r.event) for r in rows]
    if project is not None:
        events = [e for e in events if e["project"] == project]
    return events


def types_of(
    events: list[dict[str, Any]],
    prefixes: tuple[str, ...] = (
        "training_job.",
        "privacy_budget.",
        "model_version.",
    ),
) -> list[str]:
    return [e["type"] for e in events if e["type"].startswith(prefixes)]
