"""Seeds of the console page benchmark: each writes ``rows`` of what one list page lists,
through the real services (or, where the page reads what an upstream flow writes, as that
flow writes it), into a running `privet serve`'s home. ``Seeded.ids`` keeps what a page's
path names (``{project}``, ``{job}``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from tests.console.support import register_version
from tests.e2e.conftest import Server


@dataclass
class Seeded:
    server: Server
    runtime: Any
    project: str
    viewer_key: str
    rows: int
    ids: dict[str, str] = field(default_factory=dict)


def _who(principal_id: str) -> Any:
    from privet.auth.identity import Identity

    return Identity(
        principal_id=principal_id, kind="user", name="", bindings=frozenset(), method="api_key"
    )


def seed_events(seeded: Seeded) -> None:
    """``rows`` ledger events of a bank's kinds in the project, through the real emit path."""
    from privet.db import session_scope
    from privet.ledger.emit import EventSpec, emit_many

    events = [
        EventSpec(
            "prediction.made",
            f"prn_app{i % 7}",
            seeded.project,
            {"model_version": "mv_bench", "prediction": f"prd_{i:010d}"},
        )
        for i in range(seeded.rows)
    ]
    with session_scope(seeded.runtime.engine) as session:
        emit_many(session, events)
    with seeded.server.client() as http:  # the server integrates (and signs) them
        assert http.get("/v1/audit/export").status_code == 200


def _register(seeded: Seeded, project: str, prefix: str, i: int) -> Any:
    return register_version(
        seeded.runtime,
        project=project,
        model_name=f"{prefix}-{i % 10}",
        job_id=f"job_{prefix}{i:05d}",
        submitted_by="usr_bench",
    )


def seed_versions(seeded: Seeded) -> None:
    """``rows`` candidate model versions (10 models) registered through the model registry."""
    for i in range(seeded.rows):
        _register(seeded, seeded.project, "model", i)


def seed_served(seeded: Seeded) -> None:
    """``rows`` versions in service (approved through the lifecycle) in a second project,
    `served`, where the viewer is an approver: what Monitoring lists."""
    from privet.auth import service as auth_service
    from privet.auth.tables import Role
    from privet.authorization import principal_ref
    from privet.db import session_scope
    from privet.models import lifecycle

    with seeded.server.client() as http:
        project = http.post("/v1/projects", json={"name": "served"}).json()["id"]
    with session_scope(seeded.runtime.engine) as session:
        viewer = seeded.ids["viewer"]
        auth_service.bind_role(
            session, principal_id=viewer, role=Role.approver, project_id=project, actor=viewer
        )
    for i in range(seeded.rows):
        version = _register(seeded, project, "served", i)
        with session_scope(seeded.runtime.engine) as session:
            lifecycle.approve(
                session, version=version, actor_id=viewer, actor_ref=principal_ref(_who(viewer))
            )


def seed_datasets(seeded: Seeded) -> None:
    """``rows`` datasets (one 20-row version each) uploaded through the API."""
    from tests.datasets.conftest import declarations, make_rows, to_csv, upload

    content = to_csv(make_rows(20))
    with seeded.server.client() as http:
        for i in range(seeded.rows):
            made = upload(http, None, seeded.project, content, decl=declarations(name=f"ds-{i}"))
            assert made.status_code == 201, made.text


def seed_jobs(seeded: Seeded) -> None:
    """``rows`` training jobs submitted through the API (queued: the server runs no
    worker), on a dataset without personal data (non-private jobs reserve no ε)."""
    from tests.datasets.conftest import declarations, make_rows, to_csv, upload

    plain = declarations(
        name="plain",
        contains_personal_data=False,
        subject_id_column=None,
        data_categories=[],
    )
    with seeded.server.client() as http:
        content = to_csv(make_rows(40), columns=("text", "label"))
        made = upload(http, None, seeded.project, content, decl=plain)
        assert made.status_code == 201, made.text
        body = {"dataset_version_id": made.json()["id"], "private": False}
        path = f"/v1/projects/{seeded.project}/training-jobs"
        for _ in range(seeded.rows):
            job = http.post(path, json=body)
            assert job.status_code in (201, 202), job.text
        seeded.ids["job"] = job.json()["id"]


def seed_requests(seeded: Seeded) -> None:
    """``rows`` data-subject access requests logged (and carried out) through the API."""
    with seeded.server.client() as http:
        for i in range(seeded.rows):
            body = {"type": "access", "subject_id": f"subject-{i}"}
            made = http.post("/v1/data-subject-requests", json=body)
            assert made.status_code == 201, made.text


def seed_members(seeded: Seeded) -> None:
    """``rows`` people bound to the project (auth service)."""
    from privet.db import session_scope
    from tests.conftest import seed_principal

    with session_scope(seeded.runtime.engine) as session:
        for i in range(seeded.rows):
            seed_principal(session, "ml_engineer", seeded.project, f"Member {i}")


def seed_queue(seeded: Seeded) -> None:
    """``rows`` referred predictions with their sealed case texts, written as the predict
    flow and the monitor write them (tests/console/test_decisions.py does the same)."""
    from privet.db import session_scope
    from privet.inference import cases
    from privet.inference.tables import Prediction
    from privet.kit.ids import utcnow
    from privet.monitoring.tables import REFER, PredictionDecision

    version = _register(seeded, seeded.project, "queued", 0)
    now = utcnow()
    with session_scope(seeded.runtime.engine) as session:
        made = []
        for i in range(seeded.rows):
            pid, at = f"prd_bench{i:06d}", now - timedelta(seconds=seeded.rows - i)
            common = {"project_id": seeded.project, "model_version_id": version.id}
            common |= {"label": "yes", "score_ppm": 600_000, "purpose": "credit_scoring"}
            session.add(
                Prediction(
                    id=pid,
                    model_id=version.model_id,
                    version_number=version.number,
                    caller="usr_bench",
                    input_digest="hmac-sha256:" + "0" * 64,
                    created_at=at,
                    **common,
                )
            )
            rule = "decision.refer.credit-scoring-uncertain"
            session.add(
                PredictionDecision(
                    prediction_id=pid, status=REFER, rules=[rule], created_at=at, **common
                )
            )
            made.append((pid, f"case text {i}"))
        session.flush()
        cases.seal_cases(
            session,
            provider=seeded.runtime.key_provider,
            project_id=seeded.project,
            cases=made,
            created_at=now,
        )


SEEDS: dict[str, Callable[[Seeded], None]] = {
    # requests first: each one searches every dataset for its subject (1,000 datasets
    # make a request take seconds, and seeding them after the datasets, half an hour)
    "requests": seed_requests,
    "datasets": seed_datasets,
    "events": seed_events,
    "jobs": seed_jobs,
    "members": seed_members,
    "queue": seed_queue,
    "served": seed_served,
    "versions": seed_versions,
}
"""The seeds, in the order they run."""
