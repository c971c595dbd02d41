"""A training job on the Ray executor behaves as on the local worker: claimed once, the
same state machine, progress, cancellation and ledger events, ε charged as planned for
the global sample rate, and its model version registered exactly once."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from tests.jobs.conftest import (
    CANCELLED,
    LONG_JOB,
    TRAINED,
    cancel_once_stepping,
    get_job,
    ledger_events,
    submit,
    types_of,
)

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _submit_with_workers(client, runtime, caller, project, version_id, workers, **kw):  # type: ignore[no-untyped-def]
    """Submit asking for `workers`; while the jobs API lacks the field, record it in the
    job's params directly (what the API will store once it accepts it)."""
    from privet.db import session_scope
    from privet.jobs.tables import TrainingJob

    response = submit(client, caller, project, version_id, workers=workers, **kw)
    if response.status_code == 422:
        response = submit(client, caller, project, version_id, **kw)
        assert response.status_code in (200, 201, 202), response.text
        with session_scope(runtime.engine) as session:
            job = session.get(TrainingJob, response.json()["id"])
            assert job is not None
            job.params = {**job.params, "workers": workers}
            session.add(job)
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def _ray_worker(runtime, job_settings):  # type: ignore[no-untyped-def]
    from privet.executors.settings import ExecutorSettings
    from privet.jobs.executor_worker import make_worker

    return make_worker(
        runtime,
        executor_settings=ExecutorSettings(executor="ray", ray_poll_interval_s=0.1),
        settings=job_settings,
    )


def test_two_worker_ray_job_is_charged_registered_once_and_logged_like_a_local_job(
    client, runtime, project, engineer, dataset_version, job_settings, ray_local
) -> None:  # type: ignore[no-untyped-def]
    from privet.models.tables import ModelVersion
    from privet.training import compute_epsilon

    job = _submit_with_workers(client, runtime, engineer, project, dataset_version["id"], 2)
    worker = _ray_worker(runtime, job_settings)
    assert worker.tick() is True
    done = get_job(client, engineer, project, job["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert done["progress"]["step"] == done["progress"]["total_steps"] > 0
    run = worker.executor.last_run
    assert run.world_size == 2 and run.backend == "gloo"
    steps = done["result"]["privacy"]["steps"]
    assert [r.noise_additions for r in run.ranks] == [steps, 0]

    privacy = done["result"]["privacy"]
    n = done["result"]["training"]["train_examples"]
    assert privacy["sample_rate"] == min(16, n) / n  # the global rate (batch_size 16)
    assert privacy["epsilon"] <= 3.0
    assert privacy["epsilon"] == compute_epsilon(
        noise_multiplier=privacy["noise_multiplier"],
        sample_rate=privacy["sample_rate"],
        steps=privacy["steps"],
        delta=privacy["delta"],
        accountant=privacy["accountant"],
    )
    with Session(runtime.engine) as session:
        versions = session.exec(
            select(ModelVersion).where(col(ModelVersion.job_id) == job["id"])
        ).all()
    assert [v.id for v in versions] == [done["model_version_id"]]
    assert types_of(ledger_events(runtime, project=project)) == TRAINED
    # The worker has nothing left to do: the job ran once.
    assert worker.tick() is False


def test_cancelling_a_ray_job_stops_every_worker(
    client, runtime, project, engineer, dataset_version, job_settings, ray_local
) -> None:  # type: ignore[no-untyped-def]
    job = _submit_with_workers(
        client, runtime, engineer, project, dataset_version["id"], 2, **LONG_JOB
    )
    worker = _ray_worker(runtime, job_settings)
    response, took = cancel_once_stepping(
        client, engineer, project, job["id"], worker, timeout=120, poll=0.2, join=60
    )
    assert response.status_code == 200
    final = get_job(client, engineer, project, job["id"])
    assert final["state"] == "cancelled", final
    assert final["model_version_id"] is None
    print(f"cancel → every Ray worker stopped in {took:.2f} s")
    assert took < 30
    assert types_of(ledger_events(runtime, project=project))[-2:] == CANCELLED
