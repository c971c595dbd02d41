"""A job may ask for N data-parallel workers; admission refuses what the cluster setting
or the data cannot honour before any ε is reserved."""

from __future__ import annotations

from tests.jobs.conftest import submit


def test_workers_is_accepted_and_bounded(client, project, engineer, dataset_version) -> None:  # type: ignore[no-untyped-def]
    ok = submit(client, engineer, project, dataset_version["id"], workers=2)
    assert ok.status_code in (201, 202), ok.text
    detail = client.get(
        f"/v1/projects/{project}/training-jobs/{ok.json()['id']}", headers=engineer.headers
    ).json()
    assert detail["params"]["workers"] == 2
    too_many = submit(client, engineer, project, dataset_version["id"], workers=17)
    assert too_many.status_code == 422
    assert "PRIVET_RAY_MAX_WORKERS" in too_many.json()["detail"]
    absurd = submit(client, engineer, project, dataset_version["id"], workers=0)
    assert absurd.status_code == 422
