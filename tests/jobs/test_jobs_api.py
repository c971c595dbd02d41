"""Submission over the API: policy admission, budget reservation, refusals, cancellation,
tenancy. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.jobs.conftest import ledger_events, submit, types_of, upload_version


def test_submit_reserves_budget_and_ledgers_in_order(
    client, runtime, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    response = submit(client, engineer, project, dataset_version["id"])
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued"
    assert job["epsilon_reserved"] == 3.0
    assert job["submitted_by"] == f"User:{engineer.principal_id}"
    assert job["purpose"] == "credit_scoring"
    assert job["delta"] == 1e-5
    listed = client.get(f"/v1/projects/{project}/training-jobs", headers=engineer.headers)
    assert [j["id"] for j in listed.json()] == [job["id"]]
    one = client.get(f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers)
    assert one.status_code == 200 and one.json()["id"] == job["id"]

    events = ledger_events(runtime, project=project)
    assert types_of(events) == [
        "training_job.submitted",
        "training_job.admitted",
        "privacy_budget.reserved",
    ]
    admitted = next(e for e in events if e["type"] == "training_job.admitted")
    assert "role.ml_engineer" in admitted["details"]["policies"]
    reserved = next(e for e in events if e["type"] == "privacy_budget.reserved")
    assert reserved["details"]["epsilon_remaining"] == "5"


def test_over_budget_is_refused_before_training_and_ledgered(
    client, runtime, admin, project, engineer
) -> None:  # type: ignore[no-untyped-def]
    version = upload_version(client, admin, project, epsilon_total=5.0)
    assert submit(client, engineer, project, version["id"]).status_code == 201
    refused = submit(client, engineer, project, version["id"])
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/privacy-budget-exceeded")
    assert body["epsilon_remaining"] == 2.0
    assert "only ε = 2 left" in body["detail"]
    jobs = client.get(f"/v1/projects/{project}/training-jobs", headers=engineer.headers).json()
    assert len(jobs) == 1  # nothing of the refused job was written
    events = ledger_events(runtime, project=project)
    refusal = [e for e in events if e["type"] == "training_job.refused"]
    assert len(refusal) == 1 and refusal[0]["outcome"] == "deny"
    assert refusal[0]["details"]["reason"] == "privacy_budget_exceeded"
    assert refusal[0]["objects"]["training_job"] == body["refused_job_id"]
    # A smaller job still fits.
    assert submit(client, engineer, project, version["id"], target_epsilon=2.0).status_code == 201


def test_policy_refusals_are_403_problems_in_the_ledger(
    client, runtime, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    over_ceiling = submit(client, engineer, project, dataset_version["id"], target_epsilon=5.0)
    assert over_ceiling.status_code == 403, over_ceiling.text
    assert over_ceiling.json()["policies"] == ["data.epsilon-ceiling.financial"]
    unlisted = submit(client, engineer, project, dataset_version["id"], base_model="gpt-9")
    assert unlisted.status_code == 403
    assert "model.base-model-allowlist" in unlisted.json()["policies"]
    non_private = client.post(
        f"/v1/projects/{project}/training-jobs",
        json={
            "dataset_version_id": dataset_version["id"],
            "private": False,
            "base_model": "tiny-test",
        },
        headers=engineer.headers,
    )
    assert non_private.status_code == 403
    assert "data.dp-required-for-personal-data" in non_private.json()["policies"]
    wrong_purpose = submit(client, engineer, project, dataset_version["id"], purpose="marketing")
    assert wrong_purpose.status_code == 403
    events = ledger_events(runtime, project=project)
    assert [e["details"]["reason"] for e in events if e["type"] == "training_job.refused"] == [
        "policy"
    ] * 4
    decisions = [e for e in events if e["type"] == "auth.decision" and e["outcome"] == "deny"]
    assert len(decisions) == 4
    assert (
        client.get(f"/v1/projects/{project}/training-jobs", headers=engineer.headers).json() == []
    )


def test_invalid_requests_say_what_is_wrong(client, project, engineer, dataset_version) -> None:  # type: ignore[no-untyped-def]
    no_eps = client.post(
        f"/v1/projects/{project}/training-jobs",
        json={"dataset_version_id": dataset_version["id"]},
        headers=engineer.headers,
    )
    assert no_eps.status_code == 422
    assert "target_epsilon is required" in no_eps.text
    bad_delta = submit(client, engineer, project, dataset_version["id"], delta=0.01)
    assert bad_delta.status_code == 422 and "δ" in bad_delta.json()["detail"]
    missing = submit(client, engineer, project, "dsv_nope")
    assert missing.status_code == 404


def test_cancel_queued_job_releases_its_reservation(
    client, runtime, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.jobs import budget

    job = submit(client, engineer, project, dataset_version["id"]).json()
    cancelled = client.post(
        f"/v1/projects/{project}/training-jobs/{job['id']}:cancel", headers=engineer.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    with session_scope(runtime.engine) as session:
        status = budget.budget_status(session, dataset_version_id=dataset_version["id"])
    assert status is not None
    assert (status.epsilon_reserved, status.epsilon_charged, status.epsilon_remaining) == (0, 0, 8)
    assert [e["kind"] for e in status.entries] == ["reserve", "release"]
    again = client.post(
        f"/v1/projects/{project}/training-jobs/{job['id']}:cancel", headers=engineer.headers
    )
    assert again.status_code == 409


def test_other_projects_and_other_engineers(
    client, admin, make_caller, project, engineer, dataset_version
) -> None:  # type: ignore[no-untyped-def]
    job = submit(client, engineer, project, dataset_version["id"]).json()
    other_project = client.post(
        "/v1/projects", json={"name": "other"}, headers=admin.headers
    ).json()
    outsider = make_caller("ml_engineer", other_project["id"], name="outsider")
    for path in (
        f"/v1/projects/{project}/training-jobs/{job['id']}",
        f"/v1/projects/{other_project['id']}/training-jobs/{job['id']}",
    ):
        assert client.get(path, headers=outsider.headers).status_code == 404
    assert submit(client, outsider, other_project["id"], dataset_version["id"]).status_code == 404
    colleague = make_caller("ml_engineer", project, name="colleague")
    denied = client.post(
        f"/v1/projects/{project}/training-jobs/{job['id']}:cancel", headers=colleague.headers
    )
    assert denied.status_code == 403
    approver_like = make_caller("approver", project, name="approver")
    assert submit(client, approver_like, project, dataset_version["id"]).status_code == 403


def test_a_delta_the_trainer_would_refuse_is_refused_before_any_charge(
    client, admin, project, engineer
) -> None:  # type: ignore[no-untyped-def]
    # 20 rows: 16 train, so δ must stay below 1/16; the dataset declares δ = 0.1.
    from tests.datasets.conftest import declarations, make_rows, to_csv, upload

    decl = declarations(privacy_budget={"epsilon_total": 8.0, "delta": 0.1})
    version = upload(client, admin.headers, project, to_csv(make_rows(20)), decl=decl).json()
    response = submit(client, engineer, project, version["id"])
    assert response.status_code == 422, response.text
    assert "cannot run" in response.json()["detail"] and "δ" in response.json()["detail"]
