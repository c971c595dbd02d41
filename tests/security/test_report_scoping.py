"""Reports never cross the tenancy boundary: a role bound in project B reads B's reports and
never a row of project A's, nor a platform-wide report.

Issue 18, finding 3: ``GET /v1/reports/dsr-log?project=<own project>`` let a project role
read the platform-wide log of data-subject requests (the guard used the caller's roles in
the project, the builder ignored the project). One test per report kind. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from privet.reports import KINDS
from tests.datasets.conftest import declarations, make_rows, to_csv, upload


def _project(client: Any, admin: Any, name: str) -> str:
    r = client.post("/v1/projects", json={"name": name}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def two_projects(client, admin, make_version) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Projects A and B, each with a dataset and a model version; one data-subject request
    (platform-wide, about a subject in A's data); the ids that belong to A."""
    ids: dict[str, Any] = {}
    for name in ("alpha", "beta"):
        project = _project(client, admin, name)
        rows = make_rows(12, seed=len(ids) + 1)
        r = upload(client, admin.headers, project, to_csv(rows), decl=declarations(name=name))
        assert r.status_code == 201, r.text
        version = make_version(project, model_name=f"risk-{name}")
        ids[name] = {
            "project": project,
            "dataset": r.json()["dataset_id"],
            "dataset_version": r.json()["id"],
            "model": version.model_id,
            "model_version": version.id,
        }
    r = client.post(
        "/v1/data-subject-requests",
        json={"type": "access", "subject_id": "cust-00001"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    ids["dsr"] = r.json()["id"]
    return ids


# The parameters each kind needs besides the project.
_NEEDS = {"model-lineage": "model_version", "monitoring": "model_version"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_role_in_project_b_never_reads_project_a_rows(
    client, make_caller, two_projects, kind
) -> None:  # type: ignore[no-untyped-def]
    a, b = two_projects["alpha"], two_projects["beta"]
    secrets = [*a.values(), two_projects["dsr"]]
    path = f"/v1/reports/{kind}"
    for role in ("auditor", "data_steward", "admin"):
        caller = make_caller(role, b["project"], name=f"{role}-of-b")
        own: dict[str, str] = {"project": b["project"]}
        if kind in _NEEDS:
            own[_NEEDS[kind]] = b[_NEEDS[kind]]
        r = client.get(path, params=own, headers=caller.headers)
        if r.status_code == 200:
            leaked = [s for s in secrets if s in r.text]
            assert not leaked, (kind, role, leaked)
        else:  # refused: a platform-wide report, or a kind the role does not read
            assert r.status_code == 403, (kind, role, r.text)
            assert not [s for s in secrets if s in r.text]
        # A's project, or an object of A, is not found; no project means platform-wide.
        other: dict[str, str] = {"project": a["project"]}
        if kind in _NEEDS:
            other[_NEEDS[kind]] = a[_NEEDS[kind]]
        r = client.get(path, params=other, headers=caller.headers)
        assert r.status_code == 404, (kind, role, r.text)
        if kind in _NEEDS:
            r = client.get(path, params={_NEEDS[kind]: a[_NEEDS[kind]]}, headers=caller.headers)
            assert r.status_code == 404, (kind, role, r.text)
        else:
            r = client.get(path, headers=caller.headers)
            assert r.status_code == 403, (kind, role, r.text)


def test_the_dsr_log_is_platform_wide(client, admin, make_caller, two_projects) -> None:  # type: ignore[no-untyped-def]
    """A project role is refused with the reason; a platform role reads every request."""
    b = two_projects["beta"]
    steward = make_caller("data_steward", b["project"], name="steward-of-b")
    r = client.get("/v1/reports/dsr-log", params={"project": b["project"]}, headers=steward.headers)
    assert r.status_code == 403, r.text
    assert "report.platform-wide" in r.json()["detail"], r.json()
    platform = make_caller("data_steward", None, name="platform-steward")
    r = client.get("/v1/reports/dsr-log", headers=platform.headers)
    assert r.status_code == 200, r.text
    assert two_projects["dsr"] in r.text
