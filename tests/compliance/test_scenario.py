"""The issue's acceptance scenario over the HTTP API: two projects, three datasets, one
subject in two of them, two trained model versions, predictions about the subject; an
access request, an erasure request, and every report kind in every format."""

from __future__ import annotations

from typing import Any

import pytest

from privet.config import clear_settings_caches
from tests.compliance.conftest import INPUT_CANARY, ROW_CANARY, SUBJECT
from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.jobs.conftest import TINY

pytestmark = pytest.mark.slow


@pytest.fixture
def db_url(tmp_path, sqlite_template) -> str:  # type: ignore[no-untyped-def]
    """SQLite only: the scenario trains two models (about a minute); test_requests.py runs
    the request and report routes on both SQLite and PostgreSQL."""
    import shutil

    target = tmp_path / "privet.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"


def _rows(seed: int, with_subject: bool) -> bytes:
    rows = make_rows(30, seed=seed)
    if with_subject:
        for i in (3, 4):
            rows[i]["customer"] = SUBJECT
            rows[i]["text"] = f"{ROW_CANARY} {rows[i]['text']}"
    for row in rows:  # ids distinct per dataset, so only SUBJECT is shared
        if row["customer"] != SUBJECT:
            row["customer"] = f"c{seed}-{row['customer']}"
    return to_csv(rows)


def _upload(client: Any, admin: Any, project: str, name: str, seed: int, subject: bool) -> dict:
    decl = declarations(
        name=name,
        purposes=["credit_scoring"],
        data_categories=["financial", "contact"],
        privacy_budget={"epsilon_total": 8.0, "delta": 1e-5},
    )
    r = upload(
        client, admin.headers, project, _rows(seed, subject), decl=decl, filename=f"{name}.csv"
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _train(
    client: Any, caller: Any, project: str, version_id: str, eps: float, make_worker: Any
) -> str:
    body = {
        "dataset_version_id": version_id,
        "base_model": TINY,
        "target_epsilon": eps,
        "strategy": "head",
        "epochs": 1,
        "batch_size": 16,
        "physical_batch_size": 16,
        "max_length": 16,
        "learning_rate": 0.01,
    }
    r = client.post(f"/v1/projects/{project}/training-jobs", json=body, headers=caller.headers)
    assert r.status_code == 201, r.text
    assert make_worker().tick() is True
    job = client.get(
        f"/v1/projects/{project}/training-jobs/{r.json()['id']}", headers=caller.headers
    ).json()
    assert job["state"] == "succeeded", job["reason"]
    return str(job["model_version_id"])


def test_access_erasure_and_every_report(
    client, admin, make_caller, make_worker, check_report, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PRIVET_COMPLIANCE_KEEP_MAX_EPSILON", "2")
    monkeypatch.setenv("PRIVET_INFERENCE_STATE_TTL_S", "0")
    clear_settings_caches()
    projects = {}
    for name in ("retail", "claims"):
        r = client.post("/v1/projects", json={"name": name}, headers=admin.headers)
        assert r.status_code == 201, r.text
        projects[name] = r.json()["id"]
    retail, claims = projects["retail"], projects["claims"]
    r = client.put(
        f"/v1/projects/{retail}/compliance-settings",
        headers=admin.headers,
        json={
            "controller": "Example Bank plc",
            "controller_contact": "privacy@bank.example",
            "dpo_contact": "dpo@bank.example",
            "subject_categories": ["customers", "applicants"],
            "recipients": ["credit bureau"],
            "transfers": "none",
        },
    )
    assert r.status_code == 200, r.text

    loans = _upload(client, admin, retail, "loans", 1, True)
    _upload(client, admin, retail, "complaints", 2, False)
    claims_ds = _upload(client, admin, claims, "claims", 3, True)

    engineers = {p: make_caller("ml_engineer", pid, name=f"eng-{p}") for p, pid in projects.items()}
    approvers = {p: make_caller("approver", pid, name=f"appr-{p}") for p, pid in projects.items()}
    apps = {p: make_caller("predictor", pid, name=f"app-{p}") for p, pid in projects.items()}
    mv_retail = _train(client, engineers["retail"], retail, loans["id"], 1.0, make_worker)
    mv_claims = _train(client, engineers["claims"], claims, claims_ds["id"], 3.0, make_worker)
    predictions: dict[str, list[str]] = {}
    for p, pid, mv in (("retail", retail, mv_retail), ("claims", claims, mv_claims)):
        r = client.post(
            f"/v1/projects/{pid}/model-versions/{mv}:approve", headers=approvers[p].headers
        )
        assert r.status_code == 200, r.text
        model = r.json()["model_id"]
        items = [
            {
                "text": f"{INPUT_CANARY} late payment",
                "purpose": "credit_scoring",
                "subject_id": SUBJECT,
            },
            {"text": "account closed", "purpose": "credit_scoring", "subject_id": "someone-else"},
        ]
        r = client.post(
            f"/v1/projects/{pid}/models/{model}/versions/1:predict",
            json={"items": items},
            headers=apps[p].headers,
        )
        assert r.status_code == 200, r.text
        predictions[p] = [x["prediction_id"] for x in r.json()["predictions"]]
    r = client.post(
        f"/v1/projects/{retail}/predictions/{predictions['retail'][0]}:review",
        json={"decision": "confirmed", "reason": "checked"},
        headers=approvers["retail"].headers,
    )
    assert r.status_code == 201, r.text
    about_subject = {predictions["retail"][0], predictions["claims"][0]}

    steward = make_caller("data_steward", None, name="steward")
    auditor = make_caller("auditor", None, name="auditor")

    # --- access ------------------------------------------------------------------------
    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "access", "subject_id": SUBJECT, "regime": "gdpr", "requester": "Alice"},
    )
    assert r.status_code == 201, r.text
    access = r.json()
    assert access["state"] == "completed" and access["on_time"] is True
    assert SUBJECT not in r.text
    out = check_report(client, steward.headers, f"/v1/data-subject-requests/{access['id']}/report")
    data = out["json"]["data"]
    assert set(data["dataset_versions"]) == {loans["id"], claims_ds["id"]}
    assert set(data["model_versions"]) == {mv_retail, mv_claims}
    assert set(data["predictions"]) == about_subject
    for fmt in ("json_text", "csv_text", "html", "pdf"):
        assert SUBJECT in out[fmt], fmt  # the subject's own id, to the subject
        assert ROW_CANARY not in out[fmt] and INPUT_CANARY not in out[fmt], fmt
        assert "someone-else" not in out[fmt] and "c1-cust" not in out[fmt], fmt
    assert "Alice" not in out["json_text"]
    preds = {row["prediction"]: row for row in out["json"]["tables"][3]["rows"]}
    assert preds[predictions["retail"][0]]["human_reviewed"] is True

    # --- erasure -----------------------------------------------------------------------
    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "erasure", "subject_id": SUBJECT, "regime": "ccpa"},
    )
    assert r.status_code == 201, r.text
    erasure = r.json()
    assert erasure["acknowledge_due"] is not None
    result = erasure["result"]
    assert result["rows_removed"] == 4
    assert set(result["shredded_versions"]) == {loans["id"], claims_ds["id"]}
    flags = {f["model_version"]: f for f in result["flags"]}
    assert set(flags) == {mv_retail, mv_claims}
    assert flags[mv_retail]["remedy"] == "keep_with_dp"  # ε = 1 ≤ 2
    assert flags[mv_claims]["remedy"] == "retrain" and flags[mv_claims]["retrain_job"]
    for p, pid, ds in (("retail", retail, loans), ("claims", claims, claims_ds)):
        d = client.get(
            f"/v1/projects/{pid}/datasets/{ds['dataset_id']}", headers=admin.headers
        ).json()
        states = {v["id"]: v["state"] for v in d["versions"]}
        assert states[ds["id"]] == "shredded" and len(states) == 2
    retrain = client.get(
        f"/v1/projects/{claims}/training-jobs/{flags[mv_claims]['retrain_job']}",
        headers=engineers["claims"].headers,
    ).json()
    assert retrain["state"] == "queued" and states[retrain["dataset_version_id"]] == "active"

    out = check_report(client, auditor.headers, f"/v1/data-subject-requests/{erasure['id']}/report")
    assert SUBJECT not in out["json_text"] and SUBJECT not in out["pdf"]

    # The subject is gone: a new access request finds nothing.
    r = client.post(
        "/v1/data-subject-requests",
        headers=steward.headers,
        json={"type": "access", "subject_id": SUBJECT},
    )
    assert r.json()["result"]["findings"]["dataset_versions"] == []

    # --- reports -----------------------------------------------------------------------
    # A data steward reads the RoPA but not the access log (a denial the log then shows).
    assert client.get("/v1/reports/ropa", headers=steward.headers).status_code == 200
    r = client.get("/v1/reports/access-log", headers=steward.headers)
    assert r.status_code == 403
    for mv, remedy in ((mv_retail, "keep_with_dp"), (mv_claims, "retrain")):
        out = check_report(client, auditor.headers, "/v1/reports/model-lineage", model_version=mv)
        doc = out["json"]
        assert doc["data"]["flagged"] is True and doc["data"]["remedies"] == [remedy]
        erasures = next(t for t in doc["tables"] if t["name"] == "erasures")["rows"]
        assert erasures[0]["request"] == erasure["id"]
        assert any(e["type"] == "model_version.erasure_flagged" for e in doc["ledger"]["events"])
        assert "shredded" in out["html"] and erasure["id"] in out["html"]
        assert (
            "affected this version" in out["pdf"] and "trained on records that were" in out["pdf"]
        )
        _no_identifiers(out)

    for kind, params in (
        ("ropa", {}),
        ("privacy-budget", {}),
        ("access-log", {"outcome": "deny"}),
        ("dsr-log", {}),
    ):
        out = check_report(client, auditor.headers, f"/v1/reports/{kind}", **params)
        _no_identifiers(out)
        if kind == "ropa":
            assert "Example Bank plc" in out["html"] and "credit bureau" in out["json_text"]
            assert {r["dataset"] for r in out["json"]["tables"][1]["rows"]} == {
                "loans",
                "complaints",
                "claims",
            }
        if kind == "access-log" and params:
            rows = out["json"]["tables"][0]["rows"]
            assert rows and {r["outcome"] for r in rows} == {"deny"}
            assert any(r["action"] == "report.access_log.read" for r in rows)
        if kind == "dsr-log":
            assert len(out["json"]["tables"][0]["rows"]) == 3


def _no_identifiers(out: dict[str, Any]) -> None:
    for fmt in ("json_text", "csv_text", "html", "pdf"):
        text = out[fmt]
        for canary in (SUBJECT, ROW_CANARY, INPUT_CANARY, "someone-else", "-cust-0"):
            assert canary not in text, (fmt, canary)
