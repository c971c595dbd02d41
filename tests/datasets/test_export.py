"""The audited, policy-gated export of a version's raw rows."""

from __future__ import annotations

import json

from tests.datasets.conftest import make_rows, to_csv, upload


def test_steward_exports_rows_and_the_export_is_ledgered(  # type: ignore[no-untyped-def]
    client, admin, make_caller, project, runtime
) -> None:
    rows = make_rows(40)
    rows[3]["text"] = "canary-export-7731 loan"
    created = upload(client, admin.headers, project, to_csv(rows))
    assert created.status_code == 201, created.text
    version = created.json()
    url = (
        f"/v1/projects/{project}/datasets/{version['dataset_id']}/versions/"
        f"{version['number']}/export"
    )
    steward = make_caller("data_steward", project, name="steward")
    engineer = make_caller("ml_engineer", project, name="engineer")
    assert client.get(url, headers=engineer.headers).status_code == 403
    response = client.get(url, headers=steward.headers)
    assert response.status_code == 200
    exported = [json.loads(line) for line in response.text.splitlines()]
    assert len(exported) == 40
    assert {r["text"] for r in exported} == {r["text"] for r in rows}
    assert {r["subject_id"] for r in exported} == {r["customer"] for r in rows}

    from tests.jobs.conftest import ledger_events

    events = [e for e in ledger_events(runtime) if e["type"] == "dataset.version.exported"]
    assert len(events) == 1
    assert events[0]["actor"] == steward.principal_id
    assert events[0]["details"] == {"rows": 40, "format": "jsonl"}
    assert "canary-export-7731" not in json.dumps(events)


def test_an_erased_version_cannot_be_exported(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    created = upload(client, admin.headers, project, to_csv(make_rows(40))).json()
    erased = client.post(
        f"/v1/projects/{project}/datasets/{created['dataset_id']}:erase-subjects",
        json={"subject_ids": ["cust-00001"]},
        headers=admin.headers,
    )
    assert erased.status_code == 200, erased.text
    old = client.get(
        f"/v1/projects/{project}/datasets/{created['dataset_id']}/versions/1/export",
        headers=admin.headers,
    )
    assert old.status_code == 410
    new = client.get(
        f"/v1/projects/{project}/datasets/{created['dataset_id']}/versions/2/export",
        headers=admin.headers,
    )
    assert new.status_code == 200
    assert "cust-00001" not in new.text and len(new.text.splitlines()) == 39
