"""Executor selection, the hand-over from the job worker to an executor, and the sealed
transport of rows to Ray workers (no Ray needed here)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.executors.conftest import labelled
from tests.jobs.conftest import submit


def test_settings_pick_the_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from privet.config import clear_settings_caches
    from privet.executors.settings import get_executor_settings

    monkeypatch.delenv("PRIVET_EXECUTOR", raising=False)
    monkeypatch.delenv("PRIVET_RAY_ADDRESS", raising=False)
    clear_settings_caches()
    assert get_executor_settings().effective_executor == "local"
    monkeypatch.setenv("PRIVET_RAY_ADDRESS", "10.0.0.5:6379")
    clear_settings_caches()
    assert get_executor_settings().effective_executor == "ray"
    monkeypatch.setenv("PRIVET_EXECUTOR", "local")
    clear_settings_caches()
    assert get_executor_settings().effective_executor == "local"
    monkeypatch.setenv("PRIVET_RAY_GPUS_PER_WORKER", "0.5")
    clear_settings_caches()
    assert get_executor_settings().ray_gpus_per_worker == 0.5


def test_transport_is_sealed_and_bound_to_job_and_part() -> None:
    from privet.crypto.errors import CiphertextIntegrityError
    from privet.crypto.refs import ObjectRef
    from privet.executors.ray_executor import TRANSPORT_KIND, open_rows, seal_rows

    rows = labelled(10)
    key = bytes(range(32))
    ref = ObjectRef(TRANSPORT_KIND, "job-1", "proj")
    sealed = seal_rows(rows, key=key, ref=ref, part="shard-0")
    assert rows.texts[0].encode() not in sealed
    assert open_rows(sealed, key=key, ref=ref, part="shard-0") == type(rows)(
        list(rows.texts), list(rows.labels)
    )
    for other_ref, part in (
        (ObjectRef(TRANSPORT_KIND, "job-2", "proj"), "shard-0"),
        (ref, "shard-1"),
    ):
        with pytest.raises(CiphertextIntegrityError):
            open_rows(sealed, key=key, ref=other_ref, part=part)


def test_shards_partition_the_rows() -> None:
    from privet.executors.distributed import shard

    rows = labelled(7)
    parts = [shard(rows, r, 3) for r in range(3)]
    assert [len(p.texts) for p in parts if p] == [3, 2, 2]
    assert sorted(t for p in parts if p for t in p.texts) == sorted(rows.texts)
    assert shard(labelled(2), 2, 3) is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_executor_worker_hands_training_to_its_executor(
    client, runtime, project, engineer, dataset_version, job_settings
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.executors.base import JobSpec, LocalExecutor
    from privet.executors.settings import ExecutorSettings
    from privet.jobs.executor_worker import make_worker
    from privet.jobs.tables import TrainingJob
    from privet.jobs.worker import Worker

    calls: list[JobSpec] = []

    class Recording(LocalExecutor):
        name = "recording"

        def train(self, job: JobSpec, *args: Any, **kwargs: Any) -> Any:
            calls.append(job)
            return super().train(job, *args, **kwargs)

    first = submit(client, engineer, project, dataset_version["id"]).json()
    with session_scope(runtime.engine) as session:
        row = session.get(TrainingJob, first["id"])
        assert row is not None
        row.params = {**row.params, "workers": 3}
        session.add(row)
    worker = make_worker(
        runtime,
        executor=Recording(),
        executor_settings=ExecutorSettings(executor="ray"),
        settings=job_settings,
    )
    assert worker.tick() is True
    assert calls == [JobSpec(first["id"], project, workers=3)]
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{first['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded" and done["model_version_id"]

    # A plain worker in the same process trains in its own process, not on the executor.
    second = submit(client, engineer, project, dataset_version["id"]).json()
    plain = make_worker(
        runtime, executor_settings=ExecutorSettings(executor="local"), settings=job_settings
    )
    assert type(plain) is Worker
    assert plain.tick() is True
    assert len(calls) == 1
    state = client.get(
        f"/v1/projects/{project}/training-jobs/{second['id']}", headers=engineer.headers
    ).json()["state"]
    assert state == "succeeded"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_executor_without_the_validation_split_trains_without_selection(
    client, runtime, project, engineer, dataset_version, job_settings
) -> None:  # type: ignore[no-untyped-def]
    """Executors other than the local one do not carry the validation split yet: a job that
    asked for model selection trains without it, all its ε on training, and says so."""
    from privet.executors.base import LocalExecutor
    from privet.executors.settings import ExecutorSettings
    from privet.jobs.executor_worker import make_worker

    class Elsewhere(LocalExecutor):
        name = "elsewhere"

    job = submit(
        client, engineer, project, dataset_version["id"], selection="on", selection_share=0.2
    ).json()
    assert job["params"]["selection_share"] == 0.2
    worker = make_worker(
        runtime,
        executor=Elsewhere(),
        executor_settings=ExecutorSettings(executor="ray"),
        settings=job_settings,
    )
    assert worker.tick() is True
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done["reason"]
    privacy = done["result"]["privacy"]
    assert privacy["selection_releases"] == 0 and privacy["epsilon_selection"] == 0.0
    assert done["result"]["training"]["selection"] is None
