"""The drift reference is built by the platform itself when a version is approved: from the
dataset version's recorded evaluation split, decrypted in memory, capped and sampled, kept
as aggregates only, audited; a failed build keeps the approval and can be re-run.

Real datasets (uploaded, encrypted), real training (a tiny BERT, in the worker), the real
API; SQLite and PostgreSQL (the canary scan: SQLite)."""

# ruff: noqa: F811 - the jobs fixtures are imported here and requested by name

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pytest

from tests.datasets.conftest import WORDS, declarations, to_csv, upload
from tests.inference.conftest import scan_files
from tests.jobs.conftest import (  # noqa: F401 - fixtures
    approver,
    engineer,
    job_settings,
    make_worker,
    project,
    submit,
    tiny_model,
)

PURPOSE = "credit_scoring"
OTHER_WORDS = (
    "zebra quantum violin harbour meadow glacier lantern orchid saffron tundra comet basalt"
).split()
CANARY = "refcanary zq71"


def short_text(rng: random.Random) -> str:
    """The population the model was trained and evaluated on."""
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))


def long_text(rng: random.Random) -> str:
    """The population after the business changed: long texts on words never seen."""
    return " ".join(rng.choice(OTHER_WORDS) for _ in range(rng.randint(50, 80)))


def train(
    client: Any,
    admin: Any,
    engineer: Any,
    project: str,
    make_worker: Any,
    *,
    rows: int = 300,
    suffix: str = "",
) -> tuple[str, str]:
    """Upload a dataset (20% validation, 20% test), train on it; (dataset version, model
    version) ids."""
    rng = random.Random(5)
    data = [
        {"text": short_text(rng) + suffix, "label": str(i % 2), "customer": f"c-{i:05d}"}
        for i in range(rows)
    ]
    decl = declarations(split={"seed": 3, "validation": 0.2, "test": 0.2})
    r = upload(client, admin.headers, project, to_csv(data), decl=decl)
    assert r.status_code == 201, r.text
    dataset_version = r.json()["id"]
    job = submit(client, engineer, project, dataset_version, epochs=1).json()
    assert make_worker().tick()
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done.get("reason")
    return dataset_version, done["model_version_id"]


def approve(client: Any, approver: Any, project: str, version_id: str) -> dict[str, Any]:
    r = client.post(
        f"/v1/projects/{project}/model-versions/{version_id}:approve", headers=approver.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["state"] == "approved"
    return body


def stream(client: Any, path: str, caller: Any, texts: list[str]) -> None:
    for start in range(0, len(texts), 50):
        body = {"items": [{"text": t, "purpose": PURPOSE} for t in texts[start : start + 50]]}
        r = client.post(path, json=body, headers=caller.headers)
        assert r.status_code == 200, r.text


def test_approval_builds_the_reference_and_drift_is_scored_on_every_feature(
    client, runtime, admin, make_caller, project, engineer, approver, make_worker, events, clock
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.models.tables import ModelVersion
    from privet.monitoring.tables import MonitoringReference

    dataset_version, vid = train(client, admin, engineer, project, make_worker)
    approved = approve(client, approver, project, vid)
    # The approval's own answer: the reference is requested, built after the commit.
    assert approved["monitoring_reference"]["status"] == "pending"
    assert approved["monitoring_reference"]["rebuild"].endswith("/versions/1:monitoring-reference")

    with session_scope(runtime.engine) as session:
        ref = session.get(MonitoringReference, vid)
        version = session.get(ModelVersion, vid)
        assert ref is not None and version is not None
        assert ref.status == "ready" and ref.source == "test"
        assert version.training["evaluated_on"] == "test"
        assert ref.meta is not None
        assert ref.meta["dataset_version_id"] == dataset_version
        assert ref.meta["rows_available"] == ref.meta["rows_used"] == ref.count == 60
        assert ref.meta["sampled"] is False
        # Aggregates of every feature, and the quality there; the same rows and weights
        # as the evaluation at training, so the same accuracy.
        assert sum(ref.data["conf"]) == sum(ref.data["length"]) == 60
        assert ref.data["emb_n"] == 60 and len(ref.data["emb_sum"]) == 16  # hidden size
        assert ref.quality["accuracy"] == pytest.approx(version.metrics["accuracy"], abs=0.02)
        assert "text" not in str(ref.data)

    (requested,) = events("monitoring.reference_requested")
    (built,) = events("monitoring.reference_set")
    assert requested["objects"]["model_version"] == vid
    assert built["objects"] == {"model_version": vid, "dataset_version": dataset_version}
    assert built["actor"] == approver.principal_id
    assert built["details"]["trigger"] == "approval"
    assert built["details"]["examples"] == 60 and built["details"]["rows_available"] == 60
    assert built["details"]["split"] == "test"
    approved_at = next(i for i, e in enumerate(events("")) if e["type"] == "model_version.approved")
    assert events("")[approved_at + 1]["type"] == "monitoring.reference_requested"

    predictor = make_caller("predictor", project, name="app")
    path = f"/v1/projects/{project}/models/loans-classifier/versions/1:predict"
    view_path = f"/v1/projects/{project}/models/loans-classifier/versions/1/monitoring"
    rng = random.Random(11)
    stream(client, path, predictor, [short_text(rng) for _ in range(100)])
    view = client.get(view_path, headers=approver.headers).json()
    assert view["reference"]["status"] == "ready"
    assert view["reference"]["source"] == "test" and view["reference"]["examples"] == 60
    assert view["reference"]["features"] == [
        "confidence_psi",
        "embedding_shift",
        "label_js",
        "length_psi",
    ]
    (before,) = view["windows"]
    assert all(before["drift"][f] is not None for f in view["reference"]["features"])
    assert before["drifted"] == [], before["drift"]
    assert not [
        e
        for e in events("monitoring.threshold_crossed")
        if e["details"]["feature"] in ("length_psi", "embedding_shift")
    ]

    clock.advance(2 * 3600)
    stream(client, path, predictor, [long_text(rng) for _ in range(100)])
    crossed = {e["details"]["feature"] for e in events("monitoring.threshold_crossed")}
    assert {"length_psi", "embedding_shift"} <= crossed, crossed
    view = client.get(view_path, headers=approver.headers).json()
    after = view["windows"][-1]
    assert {"length_psi", "embedding_shift"} <= set(after["drifted"])


def test_a_failed_build_keeps_the_approval_and_can_be_rerun(
    client,
    runtime,
    admin,
    make_caller,
    project,
    engineer,
    approver,
    make_worker,
    events,
    monkeypatch,
) -> None:  # type: ignore[no-untyped-def]
    from privet.config import clear_settings_caches
    from privet.db import session_scope
    from privet.jobs import sources
    from privet.kit.errors import ServiceUnavailableError
    from privet.models.tables import ModelVersion
    from privet.monitoring.tables import MonitoringReference

    dataset_version, vid = train(client, admin, engineer, project, make_worker)

    class Unavailable(sources.PlatformDatasetSource):
        def load(self, session: Any, runtime: Any, *, facts: Any) -> Any:
            raise ServiceUnavailableError("the blob store is unreachable")

    sources.set_dataset_source(Unavailable())
    try:
        approved = approve(client, approver, project, vid)
    finally:
        sources.set_dataset_source(None)
    assert approved["monitoring_reference"]["status"] == "pending"
    with session_scope(runtime.engine) as session:
        version = session.get(ModelVersion, vid)
        ref = session.get(MonitoringReference, vid)
        assert version is not None and version.state == "approved"  # the approval stands
        assert ref is not None and ref.status == "failed"
        assert ref.detail == "the blob store is unreachable"
    (failed,) = events("monitoring.reference_failed")
    assert failed["outcome"] == "error"
    assert failed["details"] == {"reason": "unavailable", "trigger": "approval"}
    assert events("monitoring.reference_set") == []

    view_path = f"/v1/projects/{project}/models/loans-classifier/versions/1/monitoring"
    view = client.get(view_path, headers=approver.headers).json()
    assert view["reference"]["status"] == "failed"
    assert view["reference"]["source"] == "evaluation"  # label drift only, meanwhile
    assert view["reference"]["features"] == ["label_js"]
    assert view["reference"]["detail"] == "the blob store is unreachable"
    rebuild = view["reference"]["rebuild"]
    assert rebuild == (
        f"/v1/projects/{project}/models/loans-classifier/versions/1:monitoring-reference"
    )

    # Only an approver (or admin) rebuilds it.
    for role in ("ml_engineer", "auditor", "predictor"):
        other = make_caller(role, project, name=f"no-{role}")
        denied = client.post(rebuild, headers=other.headers)
        assert denied.status_code == 403, (role, denied.text)
        assert denied.json()["action"] == "monitoring.reference.build"

    # A rebuild that fails again answers a problem, and the failure is recorded anyway.
    sources.set_dataset_source(Unavailable())
    try:
        again = client.post(rebuild, headers=approver.headers)
    finally:
        sources.set_dataset_source(None)
    assert again.status_code == 409, again.text
    problem = again.json()
    assert again.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/monitoring-reference-failed")
    assert problem["reason"] == "unavailable" and problem["reference_status"] == "failed"
    assert [e["details"]["trigger"] for e in events("monitoring.reference_failed")] == [
        "approval",
        "rebuild",
    ]

    # With the store back, and a cap below the split's size: a fixed-seed sample.
    monkeypatch.setenv("PRIVET_MONITORING_REFERENCE_MAX_ROWS", "25")
    clear_settings_caches()
    ok = client.post(rebuild, headers=approver.headers)
    assert ok.status_code == 200, ok.text
    status = ok.json()
    assert status["status"] == "ready" and status["examples"] == 25
    assert status["rows_available"] == 60 and status["split"] == "test"
    assert status["dataset_version_id"] == dataset_version
    with session_scope(runtime.engine) as session:
        ref = session.get(MonitoringReference, vid)
        assert ref is not None and ref.meta is not None
        first = (ref.count, ref.data, ref.meta["sample_seed"])
        assert ref.meta["sampled"] is True and ref.meta["max_rows"] == 25
    built = events("monitoring.reference_set")
    assert built[-1]["details"]["trigger"] == "rebuild"
    assert built[-1]["details"]["rows_used"] == 25 and built[-1]["actor"] == approver.principal_id
    # The same sample again: the same aggregates.
    assert client.post(rebuild, headers=approver.headers).status_code == 200
    with session_scope(runtime.engine) as session:
        ref = session.get(MonitoringReference, vid)
        assert ref is not None and ref.meta is not None
        assert (ref.count, ref.data, ref.meta["sample_seed"]) == first

    # A failing rebuild keeps the ready reference it would have replaced.
    sources.set_dataset_source(Unavailable())
    try:
        assert client.post(rebuild, headers=approver.headers).status_code == 409
    finally:
        sources.set_dataset_source(None)
    view = client.get(view_path, headers=approver.headers).json()
    assert view["reference"]["status"] == "ready" and view["reference"]["examples"] == 25

    # Nothing to build for a version that does not serve.
    retired = client.post(
        f"/v1/projects/{project}/model-versions/{vid}:retire", headers=approver.headers
    )
    assert retired.status_code == 200
    assert client.post(rebuild, headers=approver.headers).status_code == 409


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_validation_text_at_rest_after_the_reference(
    client,
    runtime,
    admin,
    make_caller,
    project,
    engineer,
    approver,
    make_worker,
    events,
    caplog,
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import dispose_engines

    caplog.set_level(logging.DEBUG)
    _dataset, vid = train(
        client, admin, engineer, project, make_worker, rows=120, suffix=f" {CANARY}"
    )
    approve(client, approver, project, vid)
    (built,) = events("monitoring.reference_set")
    assert built["details"]["examples"] == 24
    rebuild = f"/v1/projects/{project}/models/loans-classifier/versions/1:monitoring-reference"
    r = client.post(rebuild, headers=approver.headers)
    assert r.status_code == 200 and CANARY not in r.text
    view = client.get(
        f"/v1/projects/{project}/models/loans-classifier/versions/1/monitoring",
        headers=approver.headers,
    )
    assert view.status_code == 200 and CANARY not in view.text
    dispose_engines()  # checkpoint the SQLite WAL into the database file
    needles = [CANARY.encode(), CANARY.encode("utf-16-le")]
    assert scan_files(Path(tmp_path), needles) == []
    assert scan_files(Path(tmp_path), [vid.encode()])  # the scan does see the database
    assert CANARY not in caplog.text
