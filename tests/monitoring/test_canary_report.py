"""No monitored input text at rest, and the monitoring report in every format."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.compliance.conftest import check_csv, check_html, check_json, check_pdf
from tests.inference.conftest import scan_files

PURPOSE = "credit_scoring"
CANARY = "monicanary qx93"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_monitored_text_at_rest(
    client, runtime, settings, make_caller, project, make_version, paths, caplog, tmp_path
) -> None:
    from privet.db import dispose_engines, session_scope
    from privet.inference.service import InferenceService
    from privet.inference.versions import lookup_version
    from privet.monitoring.service import build_reference

    caplog.set_level(logging.DEBUG)
    make_version(project)
    predictor = make_caller("predictor", project)
    approver = make_caller("approver", project)
    texts = [f"late payment {CANARY} number {i} " * (1 + i % 9) for i in range(60)]
    service = InferenceService.from_runtime(runtime)
    with session_scope(runtime.engine) as session:
        info = lookup_version(session, project_id=project, model="risk", version="1")
        build_reference(session, service=service, info=info, texts=texts, labels=["accept"] * 60)
    body = {"items": [{"text": t, "purpose": PURPOSE} for t in texts[:50]]}
    r = client.post(paths.predict(project, "risk", 1), json=body, headers=predictor.headers)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    for p in preds[:5]:
        path = f"/v1/projects/{project}/predictions/{p['prediction_id']}:outcome"
        assert (
            client.post(path, json={"label": "reject"}, headers=predictor.headers).status_code
            == 201
        )
    review = client.post(
        paths.review(project, preds[5]["prediction_id"]),
        json={"decision": "overturned", "reason": "income verified"},
        headers=approver.headers,
    )
    assert review.status_code == 201, review.text
    for path in (
        f"/v1/projects/{project}/review-queue",
        f"/v1/projects/{project}/models/risk/versions/1/monitoring",
    ):
        response = client.get(path, headers=approver.headers)
        assert response.status_code == 200 and CANARY not in response.text
    report = client.get(
        "/v1/reports/monitoring",
        params={"model_version": preds[0]["model_version_id"], "project": project},
        headers=approver.headers,
    )
    assert report.status_code == 200, report.text
    assert CANARY not in report.text
    dispose_engines()  # checkpoint the SQLite WAL into the database file
    needles = [CANARY.encode(), CANARY.encode("utf-16-le")]
    assert scan_files(tmp_path, needles) == []
    assert scan_files(tmp_path, [project.encode()])  # the scan does see the database
    assert CANARY not in caplog.text


def test_monitoring_report_in_every_format(
    client, make_caller, project, make_version, paths, tmp_path
) -> None:
    version = make_version(project)
    predictor = make_caller("predictor", project)
    approver = make_caller("approver", project)
    body = {"items": [{"text": f"late payment {i}", "purpose": PURPOSE} for i in range(8)]}
    r = client.post(paths.predict(project, "risk", 1), json=body, headers=predictor.headers)
    preds = r.json()["predictions"]
    target = preds[0]
    overturned = "accept" if target["label"] == "reject" else "reject"
    r = client.post(
        paths.review(project, target["prediction_id"]),
        json={"decision": "overturned", "label": overturned, "reason": "checked"},
        headers=approver.headers,
    )
    assert r.status_code == 201
    outcome = f"/v1/projects/{project}/predictions/{preds[1]['prediction_id']}:outcome"
    assert (
        client.post(outcome, json={"label": "accept"}, headers=predictor.headers).status_code == 201
    )
    params = {"model_version": version.id, "project": project}
    path = "/v1/reports/monitoring"
    assert client.get(path, params=params, headers=predictor.headers).status_code == 403
    out: dict[str, Any] = {}
    for n, fmt in enumerate(("json", "csv", "html", "pdf")):
        work = tmp_path / f"r{n}"
        work.mkdir()
        r = client.get(path, params={**params, "format": fmt}, headers=approver.headers)
        assert r.status_code == 200, (fmt, r.text[:300])
        if fmt == "json":
            out[fmt] = check_json(r.content, work)
        elif fmt == "csv":
            out[fmt] = check_csv(r.content)
        elif fmt == "html":
            out[fmt] = check_html(r.content)
        else:
            out[fmt] = check_pdf(r.content, work)
    doc = out["json"]
    assert doc["report"]["kind"] == "monitoring"
    assert doc["data"]["reviews"]["overturned_predictions"] == [target["prediction_id"]]
    tables = {t["name"]: t for t in doc["tables"]}
    assert [row["prediction"] for row in tables["overturned"]["rows"]] == [target["prediction_id"]]
    assert tables["windows"]["rows"][0]["predictions"] == 8
    assert "<svg" in out["html"] and "Drift per window" in out["html"]
    assert "overturned" in out["pdf"].lower()
    assert any(row.get("table") == "windows" for row in out["csv"])
    other = client.get(
        path, params={"model_version": version.id, "project": "prj_other"}, headers=approver.headers
    )
    assert other.status_code in (403, 404)
