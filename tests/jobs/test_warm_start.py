"""Warm start: a job trains from an approved model version of its own project, records it
in lineage with both datasets, and charges only its own dataset's budget; admission
refuses another project's version, one that is not approved, one with other labels or
another purpose, and one the caller may not read."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.jobs.conftest import get_job, ledger_events, submit, upload_version


def _trained_version(client, project, engineer, version_id, make_worker, **overrides) -> str:  # type: ignore[no-untyped-def]
    job = submit(client, engineer, project, version_id, **overrides)
    assert job.status_code == 201, job.text
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    return str(done["model_version_id"])


def _approve(client: Any, approver: Any, project: str, version_id: str) -> None:
    response = client.post(
        f"/v1/projects/{project}/model-versions/{version_id}:approve", headers=approver.headers
    )
    assert response.status_code == 200, response.text


def _second_dataset(client: Any, admin: Any, project: str, **decl: Any) -> dict[str, Any]:
    labels = decl.pop("labels", ("0", "1"))
    body = declarations(name=decl.pop("name", "complaints"), **decl)
    rows = make_rows(60, seed=7, labels=labels)
    response = upload(client, admin.headers, project, to_csv(rows), decl=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def parent(client, admin, project, engineer, approver, dataset_version, make_worker) -> str:  # type: ignore[no-untyped-def]
    """An approved version trained on the project's first dataset."""
    version_id = _trained_version(client, project, engineer, dataset_version["id"], make_worker)
    _approve(client, approver, project, version_id)
    return version_id


def _weights(runtime: Any, project: str, version_id: str) -> dict[str, Any]:
    from safetensors.torch import load

    from privet.db import session_scope
    from privet.models import weights

    with session_scope(runtime.engine) as session:
        loaded = weights.load_version(
            session,
            runtime=runtime,
            project_id=project,
            version_id=version_id,
            require_approved=False,
        )
    return dict(load(loaded.weights))


def test_warm_start_trains_from_the_parent_and_records_both_datasets(  # type: ignore[no-untyped-def]
    client, admin, runtime, project, engineer, dataset_version, parent, make_worker
) -> None:
    import torch

    from privet.db import session_scope
    from privet.jobs import budget

    other = _second_dataset(client, admin, project)
    # A learning rate of 1e-9: the child's weights stay the parent's (a cold start's head
    # is random), so they show where training started.
    tiny_steps = {"learning_rate": 1e-9, "head_learning_rate": 1e-9, "optimizer": "sgd"}
    body = {"init_from_model_version_id": parent, **tiny_steps}
    child_job = submit(client, engineer, project, other["id"], **body)
    assert child_job.status_code == 201, child_job.text
    assert child_job.json()["init_from_model_version_id"] == parent
    assert make_worker().tick() is True
    done = get_job(client, engineer, project, child_job.json()["id"])
    assert done["state"] == "succeeded", done["reason"]
    child = done["model_version_id"]

    parent_w, child_w = _weights(runtime, project, parent), _weights(runtime, project, child)
    assert parent_w.keys() == child_w.keys()
    for name, tensor in parent_w.items():
        assert torch.allclose(tensor, child_w[name], atol=1e-5), name
    cold = _trained_version(client, project, engineer, other["id"], make_worker, **tiny_steps)
    cold_w = _weights(runtime, project, cold)
    assert any(not torch.allclose(t, cold_w[n], atol=1e-3) for n, t in parent_w.items())

    version = client.get(
        f"/v1/projects/{project}/model-versions/{child}", headers=engineer.headers
    ).json()
    assert version["lineage"]["init_from_model_version"]["id"] == parent
    ids = [d["id"] for d in version["dataset_versions"]]
    assert ids == [other["id"], dataset_version["id"]]
    assert version["dataset_versions"][1]["via_model_version"] == parent
    spent = version["privacy"]["epsilon_by_dataset"]
    assert [e["dataset_version_ids"] for e in spent] == [[dataset_version["id"]], [other["id"]]]
    assert spent[1]["epsilon"] == version["privacy"]["epsilon"]
    parent_eps = client.get(
        f"/v1/projects/{project}/model-versions/{parent}", headers=engineer.headers
    ).json()["privacy"]["epsilon"]
    assert spent[0]["epsilon"] == parent_eps
    card = client.get(
        f"/v1/projects/{project}/model-versions/{child}/card", headers=engineer.headers
    ).text
    assert "post-processing" in card and f"warm start from model version `{parent}`" in card

    # Budgets: the parent's dataset paid once (its own job), the new one for its two jobs.
    with session_scope(runtime.engine) as session:
        first = budget.budget_status(session, dataset_version_id=dataset_version["id"])
        second = budget.budget_status(session, dataset_version_id=other["id"])
    assert first is not None and second is not None
    assert first.epsilon_charged == 3.0 and len(first.entries) == 2  # reserve, charge
    assert second.epsilon_charged == 6.0
    assert {e["job_id"] for e in second.entries} == {done["id"], cold_job_id(runtime, cold)}
    registered = [
        e
        for e in ledger_events(runtime, project=project)
        if e["type"] == "model_version.registered" and e["objects"]["model_version"] == child
    ]
    assert registered[0]["objects"]["init_model_version"] == parent

    # An erasure in the parent's dataset reaches the child through the parent's weights.
    erased = client.post(
        f"/v1/projects/{project}/datasets/{dataset_version['dataset_id']}:erase-subjects",
        json={"subject_ids": ["cust-00003"]},
        headers=admin.headers,
    )
    assert erased.status_code == 200, erased.text
    flags = client.get(
        f"/v1/projects/{project}/model-versions/{child}", headers=engineer.headers
    ).json()["erasure_flags"]
    assert [f["dataset_version_ids"] for f in flags] == [[dataset_version["id"]]]


def cold_job_id(runtime: Any, version_id: str) -> str:
    from privet.db import session_scope
    from privet.models.tables import ModelVersion

    with session_scope(runtime.engine) as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        return version.job_id


def test_base_model_comes_from_the_parent_when_the_request_names_none(  # type: ignore[no-untyped-def]
    client, admin, project, engineer, parent
) -> None:
    other = _second_dataset(client, admin, project)
    body = {"init_from_model_version_id": parent}
    from tests.jobs.conftest import job_body

    request = job_body(other["id"], **body)
    del request["base_model"]
    response = client.post(
        f"/v1/projects/{project}/training-jobs", json=request, headers=engineer.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["base_model"] == "tiny-test"
    mismatch = submit(client, engineer, project, other["id"], base_model="minilm-l6", **body)
    assert mismatch.status_code == 422
    assert "jobs.warm-start.same-base-model" in mismatch.text


def test_refuses_another_projects_version(  # type: ignore[no-untyped-def]
    client, admin, make_caller, project, parent, tiny_model
) -> None:
    other_project = client.post(
        "/v1/projects", json={"name": "insurance"}, headers=admin.headers
    ).json()["id"]
    engineer = make_caller("ml_engineer", other_project, name="their-engineer")
    version = upload_version(client, admin, other_project)
    refused = submit(
        client, engineer, other_project, version["id"], init_from_model_version_id=parent
    )
    assert refused.status_code == 404
    problem = refused.json()
    assert problem["rule"] == "jobs.warm-start.same-project"
    assert problem["type"].endswith("warm-start-version-not-found")
    unknown = submit(
        client, engineer, other_project, version["id"], init_from_model_version_id="mv_nope"
    )
    assert unknown.status_code == 404 and unknown.json()["rule"] == problem["rule"]


@pytest.mark.parametrize("state", ["candidate", "retired"])
def test_refuses_a_version_that_is_not_approved(  # type: ignore[no-untyped-def]
    client, admin, project, engineer, approver, dataset_version, make_worker, state, runtime
) -> None:
    from privet.db import session_scope
    from privet.jobs import budget

    version_id = _trained_version(client, project, engineer, dataset_version["id"], make_worker)
    if state == "retired":
        _approve(client, approver, project, version_id)
        retired = client.post(
            f"/v1/projects/{project}/model-versions/{version_id}:retire",
            json={"reason": "revoked"},
            headers=approver.headers,
        )
        assert retired.status_code == 200, retired.text
    other = _second_dataset(client, admin, project)
    refused = submit(client, engineer, project, other["id"], init_from_model_version_id=version_id)
    assert refused.status_code == 409, refused.text
    assert refused.json()["rule"] == "jobs.warm-start.approved-only"
    assert state in refused.json()["detail"]
    with session_scope(runtime.engine) as session:  # nothing half-written: no reservation
        status = budget.budget_status(session, dataset_version_id=other["id"])
    assert status is None or status.epsilon_reserved == 0


def test_refuses_other_labels_and_another_purpose(  # type: ignore[no-untyped-def]
    client, admin, project, engineer, parent
) -> None:
    three = _second_dataset(client, admin, project, labels=("0", "1", "2"))
    refused = submit(client, engineer, project, three["id"], init_from_model_version_id=parent)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["rule"] == "jobs.warm-start.same-labels"
    assert problem["dataset_labels"] == ["0", "1", "2"] and problem["labels"] == ["0", "1"]

    elsewhere = _second_dataset(client, admin, project, name="marketing", purposes=["marketing"])
    refused = submit(client, engineer, project, elsewhere["id"], init_from_model_version_id=parent)
    assert refused.status_code == 422, refused.text
    assert refused.json()["rule"] == "jobs.warm-start.same-purpose"


def test_refuses_a_version_the_caller_may_not_read(  # type: ignore[no-untyped-def]
    client, admin, runtime, project, engineer, parent, tmp_path
) -> None:
    from privet.policy import PolicyEngine, default_policy_dir

    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    (policy_dir / "no_model_reads.cedar").write_text(
        '@id("test.engineers-read-no-models")\n'
        '@reason("engineers here may not read model versions")\n'
        'forbid (principal, action == Action::"model_version.read", resource)\n'
        'when { context.roles.contains("ml_engineer") };\n'
    )
    runtime.authorizer.engine = PolicyEngine.load(policy_dir)
    other = _second_dataset(client, admin, project)
    refused = submit(client, engineer, project, other["id"], init_from_model_version_id=parent)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert "test.engineers-read-no-models" in problem["policies"]
    assert "model_version.read" in problem["detail"]
    refusals = [
        e
        for e in ledger_events(runtime, project=project)
        if e["type"] == "training_job.refused"
        and e["objects"]["training_job"] == problem["refused_job_id"]
    ]
    assert refusals and refusals[0]["details"]["reason"] == "policy"
