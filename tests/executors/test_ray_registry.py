"""The base-model registry on the Ray path: a model only the registry knows (not in the
process catalog's own entries) is resolved by the driver from the database, pinned by
its registered digests, and trained by Ray actors; once retired it admits no Ray job
either (refused at admission: nothing is queued, nothing reaches Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from privet.config import clear_settings_caches
from privet.training.catalog import build_tiny_bert
from tests.datasets.conftest import WORDS
from tests.executors.test_ray_jobs import _ray_worker
from tests.jobs.conftest import get_job, submit

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_a_registered_model_trains_on_ray_and_once_retired_admits_no_ray_job(  # type: ignore[no-untyped-def]
    client,
    runtime,
    admin,
    project,
    engineer,
    dataset_version,
    job_settings,
    ray_local,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from privet.training.catalog import CATALOG

    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("PRIVET_BASE_MODELS_ROOTS", str(root))
    clear_settings_caches()
    spec = build_tiny_bert(root / "m", name="unused", words=WORDS, pooling="mean")
    body = {"name": "tiny-ray-reg", "path": str(spec.path), "license": "Apache-2.0"}
    added = client.post("/v1/base-models", json=body, headers=admin.headers)
    assert added.status_code == 201, added.text
    assert "tiny-ray-reg" not in CATALOG.names()  # only the registry knows it

    job = submit(client, engineer, project, dataset_version["id"], base_model="tiny-ray-reg")
    assert job.status_code == 201, job.text
    worker = _ray_worker(runtime, job_settings)
    assert worker.tick() is True
    done = get_job(client, engineer, project, job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    run = worker.executor.last_run
    assert run is not None and run.result.base_model_sha256 == spec.digests["model.safetensors"]

    retired = client.post("/v1/base-models/tiny-ray-reg:retire", headers=admin.headers)
    assert retired.status_code == 200, retired.text
    refused = submit(client, engineer, project, dataset_version["id"], base_model="tiny-ray-reg")
    assert refused.status_code == 403, refused.text
    assert "model.base-model-allowlist" in refused.text
    assert worker.tick() is False  # nothing was queued: no job reaches Ray
    assert worker.executor.last_run is run
    # Its trained version keeps its base model: the resolver still answers for it.
    assert CATALOG.get("tiny-ray-reg").digests == spec.digests
