"""Every refusal explains itself (issue 18, finding 8): a denied decision names the policy
and a human reason; the PII rule also says which kinds, in how many rows and which row
numbers, never the values; the CLI prints all of it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from privet.policy import PolicyEngine
from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.sqlite_only import db_url  # noqa: F401 - SQLite only: parsers need no PostgreSQL


@pytest.fixture
def project(client, admin) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": "news"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _press_release_rows() -> list[dict[str, Any]]:
    rows = [{k: v for k, v in r.items() if k != "customer"} for r in make_rows(40)]
    rows[3]["text"] = "Media contact: Jane Roe, tel. 020 7946 0958"
    rows[9]["text"] = "For questions call +44 20 7946 0123 (investor relations, Ann Poe)"
    rows[20]["text"] = "CEO John Doe, born 14 March 1961, joins the board"
    rows[30]["text"] = "write to jane.roe@example.org for the full report"
    return rows


def test_pii_refusal_names_the_rule_the_kinds_and_the_rows(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    """Finding 8: the refusal said only "you may not perform 'dataset.upload' on this
    Project" while the ledger knew data.pii-in-non-personal-dataset."""
    decl = declarations(contains_personal_data=False, subject_id_column=None)
    response = upload(
        client,
        admin.headers,
        project,
        to_csv(_press_release_rows(), columns=("text", "label")),
        decl=decl,
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["policies"] == ["data.pii-in-non-personal-dataset"]
    assert "data.pii-in-non-personal-dataset" in body["detail"]
    reason = body["reasons"]["data.pii-in-non-personal-dataset"]
    assert "personal data" in reason and reason in body["detail"]
    findings = {f["kind"]: f for f in body["pii_findings"]}
    assert findings["phone"]["rows"] == 2 and findings["phone"]["lines"] == [5, 11]
    assert findings["birth_date"]["lines"] == [22]
    assert findings["email"]["lines"] == [32]
    assert "line 5" in body["detail"] or "lines 5" in body["detail"]
    for value in ("Jane Roe", "7946", "1961", "jane.roe", "example.org"):
        assert value not in response.text, value


def test_every_shipped_forbid_policy_has_a_reason() -> None:
    engine = PolicyEngine.load()
    forbids = [p for p in engine.info().policies if p.effect == "forbid"]
    assert forbids
    missing = [p.id for p in forbids if not p.reason]
    assert not missing, f"forbid policies without @reason(...): {missing}"


def test_a_forbid_decision_carries_its_reason() -> None:
    engine = PolicyEngine.load()
    decision = engine.decide(
        principal_type="User",
        principal_id="u1",
        action="dataset.upload",
        resource_type="Project",
        resource_id="p1",
        project_id="p1",
        roles=["admin"],
        context={"contains_personal_data": False, "pii_suspected": True},
    )
    assert not decision.allowed
    assert decision.policy_ids == ("data.pii-in-non-personal-dataset",)
    assert dict(decision.reasons)["data.pii-in-non-personal-dataset"]


def test_a_default_deny_says_no_rule_permits_it(client, project, make_caller) -> None:  # type: ignore[no-untyped-def]
    engineer = make_caller("ml_engineer", project)
    response = upload(client, engineer.headers, project, to_csv(make_rows(30)))
    assert response.status_code == 403
    body = response.json()
    assert body["policies"] == []
    assert "no policy permits" in body["detail"] and "ml_engineer" in body["detail"]


def test_cli_prints_the_rule_reason_and_rows(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from privet.cli.client import fail

    problem = {
        "type": "https://privet.dev/problems/forbidden",
        "title": "Action not allowed",
        "status": 403,
        "detail": "refused by data.pii-in-non-personal-dataset",
        "policies": ["data.pii-in-non-personal-dataset"],
        "reasons": {"data.pii-in-non-personal-dataset": "the scan found personal data"},
        "pii_findings": [{"kind": "phone", "rows": 2, "lines": [5, 11]}],
    }
    response = httpx.Response(
        403, content=json.dumps(problem), headers={"content-type": "application/problem+json"}
    )
    with pytest.raises(typer.Exit):
        fail(response)
    out = capsys.readouterr().err
    assert "data.pii-in-non-personal-dataset" in out
    assert "the scan found personal data" in out
    assert "phone" in out and "5, 11" in out
