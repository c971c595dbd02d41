"""A model version trained on rows that an erasure removed cannot be approved until its
remedy is applied, whichever came first: the erasure (while the job ran) or the model
version's registration (issue 18, finding 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from privet.config import clear_settings_caches
from tests.compliance.test_discovery_batched import carry_out_request
from tests.jobs.conftest import ledger_events, submit

SUBJECT = "cust-00003"  # a row of make_rows() in the fixture's dataset version


def _erase_dataset(client: Any, admin: Any, project: str, dataset_id: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/projects/{project}/datasets/{dataset_id}:erase-subjects",
        json={"subject_ids": [SUBJECT]},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _erase_by_request(client: Any, admin: Any) -> dict[str, Any]:
    return carry_out_request(client, admin, "erasure", SUBJECT)


def _train(
    client: Any,
    runtime: Any,
    job_settings: Any,
    engineer: Any,
    project: str,
    version_id: str,
    during: Callable[[], None] | None = None,
) -> str:
    """Run one job to a registered model version; `during` runs after training, before the
    worker registers the result (an erasure racing the job)."""
    from privet.jobs.worker import Worker

    class Racing(Worker):
        def train_job(self, *args: Any, **kwargs: Any) -> Any:
            result = super().train_job(*args, **kwargs)
            if during is not None:
                during()
            return result

    job = submit(client, engineer, project, version_id)
    assert job.status_code == 201, job.text
    assert Racing(runtime, settings=job_settings).tick() is True
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job.json()['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done["reason"]
    return str(done["model_version_id"])


def _approve(client: Any, approver: Any, project: str, mv: str) -> Any:
    return client.post(
        f"/v1/projects/{project}/model-versions/{mv}:approve", headers=approver.headers
    )


def _detail(client: Any, caller: Any, project: str, mv: str) -> dict[str, Any]:
    response = client.get(f"/v1/projects/{project}/model-versions/{mv}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _assert_refused(client: Any, approver: Any, project: str, mv: str) -> None:
    refused = _approve(client, approver, project, mv)
    assert refused.status_code in (403, 409), refused.text
    problem = refused.json()
    assert "model.erasure-flag-unresolved" in problem["detail"]
    assert problem["type"].endswith("/model-version-erasure-flagged")
    assert _detail(client, approver, project, mv)["state"] == "candidate"


def _resolve(client: Any, caller: Any, project: str, mv: str, remedy: str = "keep_with_dp") -> Any:
    return client.post(
        f"/v1/projects/{project}/model-versions/{mv}:resolve-erasure-flags",
        json={"remedy": remedy},
        headers=caller.headers,
    )


def test_erasure_while_the_job_runs_flags_the_version_it_registers(
    client, admin, runtime, project, engineer, approver, dataset_version, job_settings, make_caller
) -> None:  # type: ignore[no-untyped-def]
    dataset_id = dataset_version["dataset_id"]
    erased: list[dict[str, Any]] = []
    mv = _train(
        client,
        runtime,
        job_settings,
        engineer,
        project,
        dataset_version["id"],
        during=lambda: erased.append(_erase_dataset(client, admin, project, dataset_id)),
    )
    assert erased and erased[0]["shredded_versions"] == [dataset_version["id"]]
    # The erasure ran before the version existed, so it could not name it as affected.
    assert all(a["used_by_kind"] != "model_version" for a in erased[0]["affected"])

    _assert_refused(client, approver, project, mv)
    flags = _detail(client, approver, project, mv)["erasure_flags"]
    assert [(f["state"], f["source"], f["dataset_version_ids"]) for f in flags] == [
        ("open", "registration", [dataset_version["id"]])
    ]
    flagged = [e for e in ledger_events(runtime) if e["type"] == "model_version.erasure_flagged"]
    assert [e["objects"]["model_version"] for e in flagged] == [mv]

    # Clearing is explicit: a data steward (not the engineer) records the remedy.
    assert _resolve(client, engineer, project, mv).status_code == 403
    steward = make_caller("data_steward", project, name="steward")
    resolved = _resolve(client, steward, project, mv)
    assert resolved.status_code == 200, resolved.text
    assert [f["state"] for f in resolved.json()["erasure_flags"]] == ["resolved"]
    assert resolved.json()["erasure_flags"][0]["resolution"] == "keep_with_dp"
    assert resolved.json()["erasure_flags"][0]["resolved_by"] == steward.principal_id
    events = [e for e in ledger_events(runtime) if e["type"] == "model_version.erasure_resolved"]
    assert len(events) == 1 and events[0]["actor"] == steward.principal_id
    assert _approve(client, approver, project, mv).status_code == 200


@pytest.mark.parametrize("how", ["dataset", "request"])
def test_erasure_after_registration_blocks_approval(
    how, client, admin, runtime, project, engineer, approver, dataset_version, job_settings
) -> None:  # type: ignore[no-untyped-def]
    mv = _train(client, runtime, job_settings, engineer, project, dataset_version["id"])
    if how == "dataset":
        result = _erase_dataset(client, admin, project, dataset_version["dataset_id"])
        assert {"dataset_version_id": dataset_version["id"], "used_by_kind": "model_version",
                "used_by_id": mv} in result["affected"]  # fmt: skip
    else:
        result = _erase_by_request(client, admin)["result"]
        assert [f["model_version"] for f in result["flags"]] == [mv]
    _assert_refused(client, approver, project, mv)
    flags = _detail(client, approver, project, mv)["erasure_flags"]
    assert [f["state"] for f in flags] == ["open"]
    assert flags[0]["source"] == ("erasure" if how == "dataset" else "erasure_request")


def test_keeping_needs_the_policy_to_allow_it(
    client, admin, runtime, project, engineer, approver, dataset_version, job_settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    mv = _train(client, runtime, job_settings, engineer, project, dataset_version["id"])
    _erase_dataset(client, admin, project, dataset_version["dataset_id"])
    monkeypatch.setenv("PRIVET_COMPLIANCE_ERASURE_REMEDY", "retrain")
    clear_settings_caches()
    refused = _resolve(client, admin, project, mv)
    assert refused.status_code == 409, refused.text
    assert "retrain" in refused.json()["detail"]
    assert _resolve(client, admin, project, mv, remedy="nonsense").status_code == 422
    _assert_refused(client, approver, project, mv)
    # The remedy then is retraining: the new version (on the version without the subject)
    # is not flagged and is approved; the flagged one can only be retired.
    current = client.get(
        f"/v1/projects/{project}/datasets/{dataset_version['dataset_id']}", headers=admin.headers
    ).json()
    active = [v["id"] for v in current["versions"] if v["state"] == "active"]
    assert len(active) == 1
    retrained = _train(client, runtime, job_settings, engineer, project, active[0])
    assert _detail(client, approver, project, retrained)["erasure_flags"] == []
    assert _approve(client, approver, project, retrained).status_code == 200
    retired = client.post(
        f"/v1/projects/{project}/model-versions/{mv}:retire", headers=approver.headers
    )
    assert retired.status_code == 200, retired.text
