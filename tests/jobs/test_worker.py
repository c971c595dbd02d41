"""Workers: a job runs to a registered model version; cancellation; dead workers are
reaped with their ε charged; a job is claimed exactly once by concurrent workers."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

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


def test_worker_trains_and_registers_an_encrypted_version(
    client, runtime, project, engineer, dataset_version, make_worker
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget
    from privet.models import service as models_service
    from privet.models import weights as models_weights
    from privet.models.card import parse_card
    from privet.training import compute_epsilon

    job = submit(client, engineer, project, dataset_version["id"]).json()
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job["id"])
    assert done["state"] == "succeeded", done["reason"]
    assert done["progress"]["step"] == done["progress"]["total_steps"] > 0
    privacy = done["result"]["privacy"]
    assert privacy["epsilon"] <= 3.0
    recomputed = compute_epsilon(
        noise_multiplier=privacy["noise_multiplier"],
        sample_rate=privacy["sample_rate"],
        steps=privacy["steps"],
        delta=privacy["delta"],
        accountant=privacy["accountant"],
    )
    assert recomputed == privacy["epsilon"]
    version_id = done["model_version_id"]

    with session_scope(runtime.engine) as session:
        version = models_service.get_version(session, project_id=project, version_id=version_id)
        assert version.state == "candidate"
        loaded = models_weights.load_version(
            session,
            runtime=runtime,
            project_id=project,
            version_id=version_id,
            require_approved=False,
        )
        status = budget.budget_status(session, dataset_version_id=dataset_version["id"])
    assert status is not None and status.epsilon_charged == 3.0 and status.epsilon_reserved == 0
    # Weights are stored only inside the envelope: no blob holds any 64-byte window of them.
    blobs = [p for p in runtime.settings.blobs_dir.rglob("*") if p.is_file()]
    assert blobs
    probe = loaded.weights[-4096:-4032]
    for path in runtime.settings.home.rglob("*"):
        if path.is_file():
            assert probe not in path.read_bytes(), path

    card = client.get(
        f"/v1/projects/{project}/model-versions/{version_id}/card", headers=engineer.headers
    )
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    meta = parse_card(card.text)
    assert meta["base_model"] == "tiny-test"
    p = meta["privet"]
    assert p["dataset_versions"][0]["digest"] == dataset_version["digest"]
    for key in (
        "epsilon",
        "delta",
        "accountant",
        "noise_multiplier",
        "max_grad_norm",
        "sample_rate",
        "steps",
    ):
        assert key in p["privacy"], key
    for key in ("strategy", "epochs", "steps"):
        assert key in p["training"], key
    # where and how it trained (issue 21): no GPU here, and fp32 by default
    assert p["training"]["device"] == "cpu" and p["training"]["precision"] == "fp32"
    assert "| device | cpu |" in card.text and "| precision | fp32 |" in card.text
    assert p["lineage"]["training_job"] == job["id"]
    assert p["lineage"]["policy_version"] == runtime.authorizer.engine.version
    assert isinstance(p["lineage"]["ledger_entry_id"], int)
    assert "## Intended use" in card.text and "## Limitations" in card.text

    events = types_of(ledger_events(runtime, project=project))
    assert events == TRAINED


def test_running_job_is_cancelled_within_seconds_and_stays_charged(
    client, runtime, project, engineer, dataset_version, make_worker
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget

    job = submit(client, engineer, project, dataset_version["id"], **LONG_JOB).json()
    response, took = cancel_once_stepping(
        client, engineer, project, job["id"], make_worker(), timeout=60, poll=0.1, join=30
    )
    assert response.status_code == 200 and response.json()["state"] == "running"
    final = get_job(client, engineer, project, job["id"])
    assert final["state"] == "cancelled", final
    print(f"cancel → stopped in {took:.2f} s")
    assert took < 10
    assert final["model_version_id"] is None
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=dataset_version["id"])
    assert status is not None and status.epsilon_charged == 3.0
    assert types_of(ledger_events(runtime, project=project))[-2:] == CANCELLED


def test_dead_worker_job_is_failed_charged_and_the_next_job_runs(
    client, runtime, project, engineer, dataset_version, make_worker
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget, queue
    from privet.jobs.tables import TrainingJob
    from privet.models.tables import ModelVersion

    first = submit(client, engineer, project, dataset_version["id"]).json()
    with session_scope(runtime.engine) as session:
        claimed = queue.claim_next(session, worker_id="ghost-1")
    assert claimed is not None and claimed.id == first["id"]
    second = submit(client, engineer, project, dataset_version["id"]).json()
    # Within the timeout nothing is reaped.
    assert make_worker(heartbeat_timeout_s=30).reap() == []
    with session_scope(runtime.engine) as session:
        row = session.get(TrainingJob, first["id"])
        assert row is not None
        row.heartbeat_at = row.heartbeat_at - timedelta(seconds=60)
        session.add(row)
    worker = make_worker(heartbeat_timeout_s=30)
    assert worker.tick() is True  # reaps the ghost's job, then runs the second
    failed = get_job(client, engineer, project, first["id"])
    assert failed["state"] == "failed"
    assert "stopped sending heartbeats" in failed["reason"]
    assert get_job(client, engineer, project, second["id"])["state"] == "succeeded"
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=dataset_version["id"])
        versions = session.exec(select(ModelVersion)).all()
        # A late heartbeat from the ghost finds it no longer owns the job.
        owned, _ = queue.heartbeat(session, job_id=first["id"], worker_id="ghost-1", progress=None)
    assert status is not None and status.epsilon_charged == 6.0
    assert [v.job_id for v in versions] == [second["id"]]
    assert owned is False


def test_claim_exactly_once_with_concurrent_workers(runtime, project) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import queue
    from privet.jobs.tables import TrainingJob
    from privet.kit.ids import new_id, utcnow

    ids = []
    with session_scope(runtime.engine) as session:
        for _ in range(30):
            job = TrainingJob(
                id=new_id("job"),
                project_id=project,
                dataset_version_id="dsv_x",
                model_name="m",
                base_model="tiny-test",
                purpose="p",
                private=False,
                params={},
                submitted_by="User:u",
                submitted_by_id="u",
                created_at=utcnow(),
                progress={},
            )
            session.add(job)
            ids.append(job.id)
    claims: dict[str, list[str]] = {}
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(name: str) -> None:
        got = claims.setdefault(name, [])
        try:
            start.wait()
            while True:
                with session_scope(runtime.engine) as session:
                    job = queue.claim_next(session, worker_id=name)
                    if job is None:
                        return
                    got.append(job.id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    all_claims = [j for got in claims.values() for j in got]
    assert sorted(all_claims) == sorted(ids)  # every job once, none twice
    with session_scope(runtime.engine) as session:
        rows = session.exec(select(TrainingJob)).all()
        assert {r.state for r in rows} == {"running"}
        assert {r.id: r.worker_id for r in rows} == {
            j: name for name, got in claims.items() for j in got
        }


def test_a_failing_job_is_failed_with_its_reason_and_stays_charged(
    client, runtime, project, engineer, dataset_version, make_worker, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget
    from privet.training.catalog import CATALOG, WEIGHTS_FILE, build_tiny_bert
    from tests.datasets.conftest import WORDS

    spec = build_tiny_bert(tmp_path / "doomed", name="doomed-tiny", words=WORDS)
    CATALOG.register(spec, replace=True)
    try:
        job = submit(client, engineer, project, dataset_version["id"], base_model="doomed-tiny")
        assert job.status_code == 201, job.text
        weights = spec.path / WEIGHTS_FILE
        weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
        assert make_worker().tick() is True
    finally:
        CATALOG.unregister("doomed-tiny")
    failed = get_job(client, engineer, project, job.json()["id"])
    assert failed["state"] == "failed"
    assert "CatalogError" in failed["reason"] and "SHA-256" in failed["error_detail"]
    assert failed["error_code"] == "training_error"
    assert failed["model_version_id"] is None
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=dataset_version["id"])
    assert status is not None and status.epsilon_charged == 3.0
