"""Cross-project access (BOLA): an admin of project A, knowing every id of project B, gets
404 from every route that names a project object — through B's path and through A's path
with B's ids — and nothing of B changes. Platform-level routes (DSRs, reports, audit,
policies) are not project objects and are covered by the role matrix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlmodel import Session, col, select

from privet.api.deps import iter_api_routes
from tests.datasets.conftest import declarations, make_rows, to_csv
from tests.inference.conftest import WORDS, classifier_weights, register_version

BODIES: dict[str, Any] = {
    "/members": {"service_account_name": "intruder", "role": "admin"},
    "/invitations": {"name": "intruder", "role": "admin"},
    ":erase-subjects": {"subject_ids": ["cust-00001"]},
    ":predict": {"items": [{"text": "loan approved", "purpose": "credit_scoring"}]},
    ":review": {"kind": "review", "decision": "confirmed", "reason": "looks fine"},
    ":explain": {"text": "loan approved"},
    ":outcome": {"label": "accept"},
    ":resolve-erasure-flags": {"remedy": "keep_with_dp"},
    "/training-jobs": None,  # filled in with B's dataset version
    "/compliance-settings": {"controller": "Mallory Ltd"},
}
MULTIPART = ("/datasets", "/versions")
PLATFORM_LEVEL = (
    "/v1/data-subject-requests",
    "/v1/reports",
    "/v1/audit",
    "/v1/policies",
    "/v1/api-keys",
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/auth/config",
)


@pytest.fixture
def world(client, admin, make_caller, runtime) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from privet.training.catalog import CATALOG, build_tiny_bert

    spec = build_tiny_bert(
        runtime.settings.home / "tiny", name="tiny-bola", words=WORDS, max_position_embeddings=64
    )
    CATALOG.register(spec, replace=True)
    h = admin.headers
    a = client.post("/v1/projects", json={"name": "alpha"}, headers=h).json()["id"]
    b = client.post("/v1/projects", json={"name": "beta"}, headers=h).json()["id"]
    binding = client.post(
        f"/v1/projects/{b}/members",
        json={"service_account_name": "b-app", "role": "predictor"},
        headers=h,
    ).json()
    files = {
        "declarations": (None, json.dumps(declarations()), "application/json"),
        "file": ("loans.csv", to_csv(make_rows(60)), "text/csv"),
    }
    dataset = client.post(f"/v1/projects/{b}/datasets", files=files, headers=h)
    assert dataset.status_code == 201, dataset.text
    ds = dataset.json()
    version_id = ds["id"]
    job = client.post(
        f"/v1/projects/{b}/training-jobs",
        headers=h,
        json={
            "dataset_version_id": version_id,
            "purpose": "credit_scoring",
            "target_epsilon": 1.0,
            "epochs": 1,
        },
    )
    assert job.status_code in (201, 202), job.text
    mv = register_version(
        runtime, b, base_model="tiny-bola", weights=classifier_weights("tiny-bola", 2)
    )
    pred = client.post(
        f"/v1/projects/{b}/models/{mv.model_id}/versions/{mv.number}:predict",
        json=BODIES[":predict"],
        headers=h,
    )
    assert pred.status_code == 200, pred.text
    invitation = client.post(
        f"/v1/projects/{b}/invitations", json={"name": "b-person", "role": "approver"}, headers=h
    )
    assert invitation.status_code == 201, invitation.text
    ids = {
        "invitation_id": invitation.json()["id"],
        "binding_id": binding["id"],
        "dataset_id": ds["dataset_id"],
        "version": ds["number"],
        "job_id": job.json()["id"],
        "model": mv.model_id,
        "model_id": mv.model_id,
        "version_id": mv.id,
        "prediction_id": pred.json()["predictions"][0]["prediction_id"],
    }
    return {
        "a": a,
        "b": b,
        "ids": ids,
        "version_id": version_id,
        "owner": admin,
        "intruder": make_caller("admin", a, name="alpha-admin"),
    }


def _body(path: str, world: dict[str, Any]) -> Any:
    for suffix, body in BODIES.items():
        if path.endswith(suffix):
            if suffix == "/training-jobs":
                return {
                    "dataset_version_id": world["version_id"],
                    "purpose": "credit_scoring",
                    "target_epsilon": 1.0,
                    "epochs": 1,
                }
            return body
    return None


def _ledger_size(runtime) -> int:  # type: ignore[no-untyped-def]
    from privet.ledger.tables import LedgerEntry

    with Session(runtime.engine) as session:
        return len(session.exec(select(col(LedgerEntry.id))).all())


def test_every_project_object_route_is_404_across_projects(client, app, world) -> None:  # type: ignore[no-untyped-def]
    intruder = world["intruder"]
    checked = 0
    for route in iter_api_routes(app.routes):
        if not route.path.startswith("/v1/projects/{project_id}"):
            continue
        for method in route.methods:
            for project in (world["b"], world["a"]):
                params = re.findall(r"{(\w+)}", route.path)
                if project == world["a"] and params == ["project_id"]:
                    continue  # A's own collections: not a cross-project request
                url = route.path.replace("{project_id}", project)
                for name in params[1:]:
                    url = url.replace("{" + name + "}", str(world["ids"][name]))
                kwargs: dict[str, Any] = {"headers": intruder.headers}
                if method == "POST" and url.endswith(MULTIPART):
                    kwargs["files"] = {
                        "declarations": (None, json.dumps(declarations()), "application/json"),
                        "file": ("x.csv", to_csv(make_rows(60)), "text/csv"),
                    }
                elif method in ("POST", "PUT"):
                    body = _body(route.path, world)
                    if body is not None:
                        kwargs["json"] = body
                response = client.request(method, url, **kwargs)
                assert response.status_code == 404, (
                    method,
                    url,
                    response.status_code,
                    response.text[:300],
                )
                assert world["b"] not in response.text or project == world["b"]
                checked += 1
    assert checked >= 40
    # The same ids are live: B's own admin reads them (the 404s above are not missing data).
    ids, owner = world["ids"], world["owner"]
    for url in (
        f"/v1/projects/{world['b']}/datasets/{ids['dataset_id']}",
        f"/v1/projects/{world['b']}/model-versions/{ids['version_id']}",
        f"/v1/projects/{world['b']}/training-jobs/{ids['job_id']}",
    ):
        assert client.get(url, headers=owner.headers).status_code == 200, url


def test_revoking_another_projects_key_is_404(client, admin, world) -> None:  # type: ignore[no-untyped-def]
    members = client.get(f"/v1/projects/{world['b']}/members", headers=admin.headers).json()
    sa = next(m for m in members if m["role"] == "predictor")["principal_id"]
    key = client.post(
        "/v1/api-keys",
        json={"name": "b", "principal_id": sa, "project_id": world["b"]},
        headers=admin.headers,
    )
    assert key.status_code == 201, key.text
    response = client.delete(f"/v1/api-keys/{key.json()['id']}", headers=world["intruder"].headers)
    assert response.status_code == 404
    still = client.get("/v1/projects", headers={"Authorization": f"Bearer {key.json()['key']}"})
    assert still.status_code == 200
