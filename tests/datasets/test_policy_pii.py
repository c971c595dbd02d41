"""The PII scan feeds the upload decision; roles and tenancy decide who may do what."""

from __future__ import annotations

import json

from tests.datasets.conftest import declarations, make_rows, to_csv, upload


def _decisions(runtime, action: str) -> list[dict]:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from privet.db import session_scope
    from privet.ledger.tables import LedgerEntry

    with session_scope(runtime.engine) as session:
        events = [json.loads(bytes(e.event)) for e in session.exec(select(LedgerEntry)).all()]
    return [e for e in events if e["type"] == "auth.decision" and e["details"]["action"] == action]


def _with_pii(rows: list[dict]) -> list[dict]:
    rows[3]["text"] = "please call me at +44 20 7946 0958 about the loan"
    rows[5]["text"] = "my email is jane.doe@example.org"
    rows[7]["text"] = "card 4111 1111 1111 1111 was charged twice"
    return rows


def test_pii_in_dataset_declared_non_personal_is_refused_by_policy(
    client, admin, project, runtime
) -> None:  # type: ignore[no-untyped-def]
    decl = declarations(contains_personal_data=False, subject_id_column=None)
    rows = [{k: v for k, v in r.items() if k != "customer"} for r in _with_pii(make_rows(30))]
    response = upload(
        client, admin.headers, project, to_csv(rows, columns=("text", "label")), decl=decl
    )
    assert response.status_code == 403, response.text
    assert response.json()["action"] == "dataset.upload"
    decisions = _decisions(runtime, "dataset.upload")
    assert [d["outcome"] for d in decisions] == ["allow", "deny"]  # admission, then the scan
    assert "data.pii-in-non-personal-dataset" in decisions[-1]["details"]["policies"]
    assert client.get(f"/v1/projects/{project}/datasets", headers=admin.headers).json() == []
    assert not [p for p in runtime.settings.blobs_dir.rglob("*") if p.is_file()]


def test_pii_in_personal_dataset_is_a_warning(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    response = upload(client, admin.headers, project, to_csv(_with_pii(make_rows(30))))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["pii_scan"]["suspected"] is True
    assert body["pii_scan"]["counts"] == {"email": 1, "phone": 1, "card": 1}
    assert body["pii_scan"]["first_lines"]["email"] == [7]
    assert body["warnings"] and "personal data" in body["warnings"][0]
    assert "jane.doe" not in response.text


def test_roles_and_tenancy(client, admin, project, runtime, make_caller) -> None:  # type: ignore[no-untyped-def]
    steward = make_caller("data_steward", project)
    engineer = make_caller("ml_engineer", project)
    created = upload(client, steward.headers, project, to_csv(make_rows(30)))
    assert created.status_code == 201, created.text
    dataset_id = created.json()["dataset_id"]
    denied = upload(
        client, engineer.headers, project, to_csv(make_rows(30)), decl=declarations(name="other")
    )
    assert denied.status_code == 403
    assert (
        client.get(f"/v1/projects/{project}/datasets", headers=engineer.headers).status_code == 200
    )
    erase = client.post(
        f"/v1/projects/{project}/datasets/{dataset_id}:erase-subjects",
        json={"subject_ids": ["cust-00001"]},
        headers=engineer.headers,
    )
    assert erase.status_code == 403
    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()["id"]
    outsider = make_caller("data_steward", other)
    for path in (
        f"/v1/projects/{project}/datasets",
        f"/v1/projects/{project}/datasets/{dataset_id}",
        f"/v1/projects/{project}/datasets/{dataset_id}/versions/1",
    ):
        assert client.get(path, headers=outsider.headers).status_code == 404, path
    # knowing the id does not help from the outsider's own project either
    assert (
        client.get(
            f"/v1/projects/{other}/datasets/{dataset_id}", headers=outsider.headers
        ).status_code
        == 404
    )
    assert upload(client, outsider.headers, project, to_csv(make_rows(30))).status_code == 404
