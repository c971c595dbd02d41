"""Four eyes against insiders: two-person rules compare the accountable humans behind
principals, and service accounts neither approve model versions nor decide human reviews.

Issue 18, finding 2: a project admin who submitted a job added a service account with the
approver role, minted its key, and approved their own model. Each sequence below is made
of requests that were all allowed one by one. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any


def _service_account(
    client: Any, headers: dict[str, str], project: str, name: str, role: str
) -> dict[str, Any]:
    """A new service account bound to ``role`` in ``project``, with its own project key."""
    r = client.post(
        f"/v1/projects/{project}/members",
        json={"service_account_name": name, "role": role},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    principal_id = r.json()["principal_id"]
    r = client.post(
        "/v1/api-keys",
        json={"name": f"{name} key", "principal_id": principal_id, "project_id": project},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return {
        "principal_id": principal_id,
        "headers": {"Authorization": f"Bearer {r.json()['key']}"},
    }


def _approve(client: Any, project: str, version_id: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/v1/projects/{project}/model-versions/{version_id}:approve", headers=headers
    )


def _refused_by(response: Any, policy_id: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert policy_id in body["detail"], body
    assert policy_id in body.get("policies", []), body


def test_a_project_admin_cannot_approve_their_own_model_through_a_service_account(
    client, make_caller, project, make_version
) -> None:  # type: ignore[no-untyped-def]
    padmin = make_caller("admin", project, name="project-admin")
    version = make_version(project, state="candidate", submitted_by=f"User:{padmin.principal_id}")
    # Every step is allowed: add a service account as approver, mint its key, approve.
    bot = _service_account(client, padmin.headers, project, "approval-bot", "approver")
    _refused_by(
        _approve(client, project, version.id, bot["headers"]), "model.approval-by-named-person"
    )
    # A named person other than the submitter approves.
    approver = make_caller("approver", project, name="risk-officer")
    ok = _approve(client, project, version.id, approver.headers)
    assert ok.status_code == 200, ok.text


def test_a_job_submitted_by_a_service_account_is_not_approved_by_its_accountable_human(
    client, make_caller, project, make_version
) -> None:  # type: ignore[no-untyped-def]
    padmin = make_caller("admin", project, name="project-admin")
    ci = _service_account(client, padmin.headers, project, "ci", "ml_engineer")
    version = make_version(
        project, state="candidate", submitted_by=f"ServiceAccount:{ci['principal_id']}"
    )
    _refused_by(
        _approve(client, project, version.id, padmin.headers), "model.segregation-of-duties"
    )

    # A service account created by a service account answers to the same human.
    ops = _service_account(client, padmin.headers, project, "ops", "admin")
    ci2 = _service_account(client, ops["headers"], project, "ci-2", "ml_engineer")
    members = client.get(f"/v1/projects/{project}/members", headers=padmin.headers).json()
    accountable = {m["principal_id"]: m["accountable_human_id"] for m in members}
    kinds = {m["principal_id"]: m["principal_kind"] for m in members}
    assert accountable[ci2["principal_id"]] == padmin.principal_id
    assert accountable[ops["principal_id"]] == padmin.principal_id
    assert accountable[padmin.principal_id] == padmin.principal_id
    assert kinds[ci2["principal_id"]] == "service_account" and kinds[padmin.principal_id] == "user"
    second = make_version(
        project,
        model_name="risk-2",
        state="candidate",
        submitted_by=f"ServiceAccount:{ci2['principal_id']}",
    )
    _refused_by(_approve(client, project, second.id, padmin.headers), "model.segregation-of-duties")

    # Another person approves both.
    approver = make_caller("approver", project, name="risk-officer")
    for vid in (version.id, second.id):
        ok = _approve(client, project, vid, approver.headers)
        assert ok.status_code == 200, ok.text


def _predict(client: Any, project: str, headers: dict[str, str]) -> str:
    r = client.post(
        f"/v1/projects/{project}/models/risk/versions/1:predict",
        json={"items": [{"text": "late payment high debt", "purpose": "credit_scoring"}]},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["predictions"][0]["prediction_id"])


def _review(
    client: Any, project: str, prediction_id: str, headers: dict[str, str], **body: Any
) -> Any:
    return client.post(
        f"/v1/projects/{project}/predictions/{prediction_id}:review", json=body, headers=headers
    )


def test_human_review_is_decided_by_a_named_person_other_than_the_deciders(
    client, make_caller, project, make_version
) -> None:  # type: ignore[no-untyped-def]
    make_version(project)
    padmin = make_caller("admin", project, name="project-admin")
    app = _service_account(client, padmin.headers, project, "scoring-app", "predictor")
    pid = _predict(client, project, app["headers"])

    # The human behind the application that decided does not review its decision.
    _refused_by(
        _review(client, project, pid, padmin.headers, decision="confirmed"),
        "review.not-by-the-deciding-application",
    )
    # A service account never decides a review (a regulator expects a named person).
    bot = _service_account(client, padmin.headers, project, "review-bot", "approver")
    _refused_by(
        _review(client, project, pid, bot["headers"], decision="confirmed"),
        "review.named-person-decides",
    )

    first = make_caller("approver", project, name="reviewer-1")
    r = _review(client, project, pid, first.headers, decision="confirmed")
    assert r.status_code == 201, r.text
    r = _review(client, project, pid, first.headers, kind="contest", reason="disputed")
    assert r.status_code == 201, r.text
    # The contest is not decided by the person whose decision it contests.
    _refused_by(
        _review(client, project, pid, first.headers, decision="overturned", label="accept"),
        "review.redecided-by-another-person",
    )
    second = make_caller("approver", project, name="reviewer-2")
    r = _review(client, project, pid, second.headers, decision="overturned", label="accept")
    assert r.status_code == 201, r.text
