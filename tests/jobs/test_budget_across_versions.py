"""The privacy budget belongs to the dataset, not to one version of it (issue 18, finding 4).

A subject in a version derived by erasure, or in a new upload of the same dataset, was in
the earlier versions too, so the ε spent on those counts against them: no version starts
with a fresh budget.
"""

from __future__ import annotations

from typing import Any

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.jobs.conftest import race, submit, upload_version


def _charge_next(make_worker: Any, runtime: Any) -> str:
    """Claim the next queued job as a worker would (its reservation becomes spent ε)."""
    from privet.db import session_scope
    from privet.jobs import queue

    with session_scope(runtime.engine) as session:
        job = queue.claim_next(session, worker_id="w-test")
        assert job is not None
        return job.id


def _upload_again(
    client: Any, admin: Any, project: str, dataset_id: str, *, epsilon_total: float, seed: int = 1
) -> Any:
    """60 new rows uploaded as the next version of ``dataset_id``, declaring ``epsilon_total``."""
    body = declarations(privacy_budget={"epsilon_total": epsilon_total, "delta": 1e-5})
    rows = to_csv(make_rows(60, seed=seed))
    return upload(client, admin.headers, project, rows, decl=body, dataset_id=dataset_id)


def _status(runtime: Any, version_id: str) -> Any:
    from privet.db import session_scope
    from privet.jobs import budget

    with session_scope(runtime.engine) as session:
        return budget.budget_status(session, dataset_version_id=version_id)


def test_erasure_does_not_reset_the_budget(
    client, admin, runtime, project, engineer, make_worker
) -> None:  # type: ignore[no-untyped-def]
    v1 = upload_version(client, admin, project, epsilon_total=5.0)
    first = submit(client, engineer, project, v1["id"], target_epsilon=3.0)
    assert first.status_code == 201, first.text
    assert _charge_next(make_worker, runtime) == first.json()["id"]  # 3 of 5 spent on v1

    erased = client.post(
        f"/v1/projects/{project}/datasets/{v1['dataset_id']}:erase-subjects",
        json={"subject_ids": ["cust-00003"]},
        headers=admin.headers,
    )
    assert erased.status_code == 200, erased.text
    v2 = erased.json()["new_version"]
    assert v2 is not None and v2["epsilon_total"] == 5.0

    # Everyone left in v2 was in v1, where 3 was spent: only 2 remain for them.
    again = submit(client, engineer, project, v2["id"], target_epsilon=3.0)
    assert again.status_code == 409, again.text
    problem = again.json()
    assert problem["type"].endswith("/privacy-budget-exceeded")
    assert problem["epsilon_remaining"] == 2.0
    assert "dataset" in problem["detail"]
    fits = submit(client, engineer, project, v2["id"], target_epsilon=2.0)
    assert fits.status_code == 201, fits.text

    status = _status(runtime, v2["id"])
    assert status is not None
    assert status.scope == "dataset" and status.dataset_id == v1["dataset_id"]
    assert (status.epsilon_total, status.epsilon_charged, status.epsilon_reserved) == (5, 3, 2)
    assert status.epsilon_remaining == 0
    assert [(e["dataset_version_id"], e["kind"]) for e in status.entries] == [
        (v1["id"], "reserve"),
        (v1["id"], "charge"),
        (v2["id"], "reserve"),
    ]
    # The status of the (shredded) v1 is the same dataset-wide budget.
    old = _status(runtime, v1["id"])
    assert old is not None and old.epsilon_remaining == 0 and old.epsilon_charged == 3


def test_a_new_upload_of_the_same_dataset_shares_its_budget(
    client, admin, runtime, project, engineer, make_worker
) -> None:  # type: ignore[no-untyped-def]
    v1 = upload_version(client, admin, project, epsilon_total=5.0)
    assert submit(client, engineer, project, v1["id"], target_epsilon=3.0).status_code == 201
    _charge_next(make_worker, runtime)

    again = _upload_again(client, admin, project, v1["dataset_id"], epsilon_total=5.0, seed=2)
    assert again.status_code == 201, again.text
    v2 = again.json()
    assert v2["number"] == 2

    refused = submit(client, engineer, project, v2["id"], target_epsilon=3.0)
    assert refused.status_code == 409, refused.text
    assert refused.json()["epsilon_remaining"] == 2.0


def test_a_new_version_cannot_raise_the_dataset_total(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    v1 = upload_version(client, admin, project, epsilon_total=8.0)
    raised = _upload_again(client, admin, project, v1["dataset_id"], epsilon_total=10.0)
    assert raised.status_code == 409, raised.text
    problem = raised.json()
    assert problem["type"].endswith("/privacy-budget-increase")
    assert "8" in problem["detail"] and "10" in problem["detail"]
    assert problem["dataset_epsilon_total"] == 8.0


def test_a_lower_total_on_a_new_version_lowers_the_dataset_budget(
    client, admin, runtime, project, engineer, make_worker
) -> None:  # type: ignore[no-untyped-def]
    v1 = upload_version(client, admin, project, epsilon_total=8.0)
    assert submit(client, engineer, project, v1["id"], target_epsilon=3.0).status_code == 201
    v2 = _upload_again(client, admin, project, v1["dataset_id"], epsilon_total=4.0).json()
    assert v2["epsilon_total"] == 4.0
    # The stricter declaration holds for every version, v1 included: 4 - 3 = 1 left.
    for version in (v1, v2):
        refused = submit(client, engineer, project, version["id"], target_epsilon=2.0)
        assert refused.status_code == 409, refused.text
        assert refused.json()["epsilon_total"] == 4.0
    status = _status(runtime, v1["id"])
    assert status is not None and status.epsilon_total == 4.0 and status.epsilon_remaining == 1.0


def test_concurrent_reservations_across_versions_never_overspend(
    client, admin, runtime, project, engineer
) -> None:  # type: ignore[no-untyped-def]
    """Jobs on two versions of one dataset race for the same budget row: at most ⌊8/3⌋ win."""
    from privet.auth.identity import Identity
    from privet.db import session_scope
    from privet.jobs import budget
    from privet.jobs import service as jobs_service
    from privet.jobs.schemas import TrainingJobCreate
    from tests.jobs.conftest import job_body

    v1 = upload_version(client, admin, project, epsilon_total=8.0)
    # The default declarations: the same total of 8.
    v2 = _upload_again(client, admin, project, v1["dataset_id"], epsilon_total=8.0, seed=3).json()
    identity = Identity(
        principal_id=engineer.principal_id,
        kind="user",
        name="engineer",
        bindings=frozenset(),
        method="api_key",
    )
    bodies = [
        TrainingJobCreate.model_validate(job_body((v1, v2)[i % 2]["id"], target_epsilon=3.0))
        for i in range(6)
    ]

    def one(i: int) -> None:
        data = bodies[i]
        with session_scope(runtime.engine) as session:
            admission = jobs_service.prepare_submission(session, project_id=project, data=data)
            jobs_service.submit(
                session, project_id=project, data=data, admission=admission, actor=identity
            )

    outcomes = race(6, one, refused=budget.BudgetExceededError)
    assert outcomes == ["ok", "ok"] + ["refused"] * 4
    status = _status(runtime, v2["id"])
    assert status is not None and status.epsilon_reserved == 6.0 and status.epsilon_remaining == 2.0
