"""Data-subject request routes and reports on SQLite and PostgreSQL (no training): intake,
deadlines, erasure across projects, objection, the request log, authorization, and the
ledger evidence of reports verified offline."""

from __future__ import annotations

from typing import Any

from privet_audit.report import verify_report
from tests.compliance.conftest import ROW_CANARY, SUBJECT
from tests.datasets.conftest import declarations, make_rows, to_csv, upload


def _project(client: Any, admin: Any, name: str) -> str:
    r = client.post("/v1/projects", json={"name": name}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _dataset(client: Any, admin: Any, project: str, seed: int) -> dict[str, Any]:
    rows = make_rows(12, seed=seed)
    rows[0]["customer"] = SUBJECT
    rows[0]["text"] = f"{ROW_CANARY} {rows[0]['text']}"
    r = upload(client, admin.headers, project, to_csv(rows), decl=declarations(name=f"d{seed}"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_requests_erasure_objection_and_log(client, admin, make_caller, runtime) -> None:  # type: ignore[no-untyped-def]
    a, b = _project(client, admin, "alpha"), _project(client, admin, "beta")
    da, db = _dataset(client, admin, a, 1), _dataset(client, admin, b, 2)
    steward = make_caller("data_steward", None, name="steward")
    engineer = make_caller("ml_engineer", a, name="engineer")
    project_steward = make_caller("data_steward", a, name="project-steward")

    # Only platform-wide stewards and admins take requests: they span every project.
    body = {"type": "access", "subject_id": SUBJECT}
    assert (
        client.post("/v1/data-subject-requests", json=body, headers=engineer.headers).status_code
        == 403
    )
    assert (
        client.post(
            "/v1/data-subject-requests", json=body, headers=project_steward.headers
        ).status_code
        == 403
    )
    bad = client.post(
        "/v1/data-subject-requests",
        json={"type": "forget", "subject_id": "x"},
        headers=steward.headers,
    )
    assert bad.status_code == 422
    for wrong in ({"received_date": "2999-01-01"}, {"purposes": ["marketing"]}):
        bad = client.post(
            "/v1/data-subject-requests", json={**body, **wrong}, headers=steward.headers
        )
        assert bad.status_code == 422, wrong

    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={**body, "regime": "ccpa", "received_date": "2026-11-27", "requester": "agent"},
    )
    assert r.status_code == 201, r.text
    access = r.json()
    assert access["acknowledge_due"].startswith("2026-12-11")
    assert access["due_at"].startswith("2027-01-11")
    assert set(access["result"]["findings"]["dataset_versions"]) == {da["id"], db["id"]}
    assert SUBJECT not in r.text

    r = client.get(f"/v1/data-subject-requests/{access['id']}/report", headers=steward.headers)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert SUBJECT in r.text and ROW_CANARY not in r.text and "agent" not in r.text
    assert verify_report(doc).ok, verify_report(doc).message
    # An auditor may read the answer, but not the subject's id in it.
    auditor = make_caller("auditor", None, name="auditor")
    r = client.get(f"/v1/data-subject-requests/{access['id']}/report", headers=auditor.headers)
    assert r.status_code == 200 and SUBJECT not in r.text and "withheld" in r.text
    assert set(r.json()["data"]["dataset_versions"]) == {da["id"], db["id"]}
    assert (
        client.get(
            f"/v1/data-subject-requests/{access['id']}/report", headers=engineer.headers
        ).status_code
        == 403
    )
    assert (
        client.get("/v1/data-subject-requests/dsr_nope", headers=steward.headers).status_code == 404
    )

    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "erasure", "subject_id": SUBJECT},
    )
    assert r.status_code == 201, r.text
    result = r.json()["result"]
    assert result["rows_removed"] == 2 and len(result["new_versions"]) == 2
    assert set(result["shredded_versions"]) == {da["id"], db["id"]}
    assert result["flags"] == []

    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "objection", "subject_id": SUBJECT, "purposes": ["marketing"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["result"]["purposes"] == ["marketing"]
    from privet.compliance.service import has_objection, subject_pseudonym
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        digest = subject_pseudonym(runtime, SUBJECT)
        assert has_objection(session, subject_digest=digest, purpose="marketing")
        assert not has_objection(session, subject_digest=digest, purpose="credit_scoring")

    listed = client.get("/v1/data-subject-requests", headers=steward.headers).json()
    assert [x["type"] for x in listed] == ["objection", "erasure", "access"]
    assert all(x["state"] == "completed" for x in listed)

    r = client.get("/v1/reports/dsr-log", headers=steward.headers)
    assert r.status_code == 200, r.text
    log = r.json()
    assert verify_report(log).ok and SUBJECT not in r.text
    assert len(log["tables"][0]["rows"]) == 3
    types = {e["type"] for e in log["ledger"]["events"]}
    assert {"dsr.received", "dsr.acknowledged", "dsr.completed"} <= types

    # Project-scoped reports: a project's steward reads its own RoPA, not another's.
    for kind, params, caller, status in [
        ("ropa", {"project": a}, project_steward, 200),
        ("ropa", {"project": b}, project_steward, 404),
        ("privacy-budget", {"project": a}, engineer, 200),
        ("model-lineage", {"model_version": "mv_nope"}, admin, 404),
    ]:
        got = client.get(f"/v1/reports/{kind}", params=params, headers=caller.headers)
        assert got.status_code == status, (kind, params, got.text)
    assert client.get("/v1/reports/model-lineage", headers=admin.headers).status_code == 422
    assert (
        client.get("/v1/reports/ropa", params={"format": "xml"}, headers=admin.headers).status_code
        == 422
    )
    assert client.get("/v1/reports/nope", headers=admin.headers).status_code == 404

    # Tampering with a cited event is caught offline.
    entry = log["ledger"]["events"][0]
    entry["entry"] = entry["entry"].replace("dsr.", "dsx.", 1)
    assert not verify_report(log).ok


def test_compliance_settings_feed_the_ropa(client, admin, make_caller) -> None:  # type: ignore[no-untyped-def]
    p = _project(client, admin, "gamma")
    _dataset(client, admin, p, 3)
    engineer = make_caller("ml_engineer", p, name="engineer")
    settings = {
        "controller": "Insurer SA",
        "dpo_contact": "dpo@insurer.example",
        "recipients": ["reinsurer"],
        "subject_categories": ["policyholders"],
    }
    assert (
        client.put(
            f"/v1/projects/{p}/compliance-settings", json=settings, headers=engineer.headers
        ).status_code
        == 403
    )
    r = client.put(f"/v1/projects/{p}/compliance-settings", json=settings, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (
        client.get(f"/v1/projects/{p}/compliance-settings", headers=engineer.headers).json()[
            "controller"
        ]
        == "Insurer SA"
    )
    r = client.get(
        "/v1/reports/ropa", params={"project": p, "format": "csv"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "Insurer SA" in r.text and "reinsurer" in r.text and "policyholders" in r.text
    assert SUBJECT not in r.text and "cust-" not in r.text


def test_issued_reports_are_logged_and_the_log_expires_subject_ids(
    client, admin, make_caller, runtime
) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import json
    from datetime import timedelta

    from sqlmodel import select

    from privet.compliance.service import sweep_request_log
    from privet.db import session_scope
    from privet.kit.ids import utcnow
    from privet.ledger.tables import LedgerEntry

    p = _project(client, admin, "delta")
    _dataset(client, admin, p, 5)
    steward = make_caller("data_steward", None, name="steward")
    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "access", "subject_id": SUBJECT},
    )
    request_id = r.json()["id"]
    r = client.get(
        f"/v1/data-subject-requests/{request_id}/report",
        params={"format": "csv"},
        headers=steward.headers,
    )
    assert r.status_code == 200
    digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
    assert r.headers["x-privet-report-digest"] == digest
    with session_scope(runtime.engine) as session:
        events = [json.loads(e) for e in session.exec(select(LedgerEntry.event)).all()]
    issued = [e for e in events if e["type"] == "report.issued"]
    assert issued[-1]["digests"]["document"] == digest
    assert issued[-1]["objects"]["data_subject_request"] == request_id

    with session_scope(runtime.engine) as session:
        assert sweep_request_log(session) == []  # kept for at least 24 months
        later = utcnow() + timedelta(days=731)
        assert sweep_request_log(session, now=later) == [request_id]
    r = client.get(f"/v1/data-subject-requests/{request_id}/report", headers=steward.headers)
    assert r.status_code == 410 and r.json()["type"].endswith("subject-id-shredded")
    detail = client.get(f"/v1/data-subject-requests/{request_id}", headers=steward.headers)
    assert detail.status_code == 200 and detail.json()["state"] == "completed"
