"""Decision rules at prediction time, the review queue and reviews, outcomes."""

from __future__ import annotations

from typing import Any

PURPOSE = "credit_scoring"


def _predict(client: Any, path: str, headers: Any, texts: list[str]) -> list[dict[str, Any]]:
    body = {"items": [{"text": t, "purpose": PURPOSE} for t in texts]}
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["predictions"])


TEXTS = [
    "the customer paid on time",
    "late payment and high debt",
    "account closed",
    "credit card balance high risk",
    "good income never missed",
    "bad debt late late",
]


def test_adverse_credit_decisions_are_never_final_without_review(
    client, make_caller, project, make_version, paths, events
) -> None:
    version = make_version(project)
    app = make_caller("predictor", project)
    approver = make_caller("approver", project)
    preds = _predict(client, paths.predict(project, "risk", 1), app.headers, TEXTS * 3)
    made = {e["objects"]["prediction"]: e for e in events("prediction.made")}
    for p in preds:
        event = made[p["prediction_id"]]["details"]
        assert event["decision"] == p["decision"]
        assert event["decision_rules"] == p["decision_rules"]
        if p["label"] == "reject":
            assert p["decision"] == "pending_review"
            assert "decision.review.credit-scoring-adverse" in p["decision_rules"]
        elif p["score"] < 0.65:
            assert p["decision"] == "refer"
            assert p["decision_rules"] == ["decision.refer.credit-scoring-uncertain"]
        else:
            assert p["decision"] == "final"
    assert any(p["decision"] != "final" for p in preds)

    queue_path = f"/v1/projects/{project}/review-queue"
    denied = client.get(queue_path, headers=app.headers)
    assert denied.status_code == 403
    queue = client.get(queue_path, headers=approver.headers)
    assert queue.status_code == 200, queue.text
    open_items = queue.json()["items"]
    non_final = [p["prediction_id"] for p in preds if p["decision"] != "final"]
    # Oldest first; the rows of one predict call share created_at and follow by id.
    assert sorted(i["prediction_id"] for i in open_items) == sorted(non_final)
    keys = [(i["created_at"], i["prediction_id"]) for i in open_items]
    assert keys == sorted(keys)
    assert queue.json()["open"] == len(non_final)
    assert all(i["model_version_id"] == version.id for i in open_items)

    # A reviewer overturns one and confirms another: both leave the open queue.
    first, second = non_final[0], non_final[1]
    label = next(p["label"] for p in preds if p["prediction_id"] == first)
    other = "accept" if label == "reject" else "reject"
    r = client.post(
        paths.review(project, first),
        json={"decision": "overturned", "label": other, "reason": "income verified"},
        headers=approver.headers,
    )
    assert r.status_code == 201, r.text
    r = client.post(paths.review(project, second), json={}, headers=approver.headers)
    assert r.status_code == 201, r.text
    # A contest does not close an item.
    r = client.post(
        paths.review(project, non_final[2]), json={"kind": "contest"}, headers=approver.headers
    )
    assert r.status_code == 201, r.text
    after = client.get(queue_path, headers=approver.headers).json()
    assert after["open"] == len(non_final) - 2
    closed = client.get(queue_path, params={"status": "closed"}, headers=approver.headers).json()
    by_id = {i["prediction_id"]: i for i in closed["items"]}
    assert by_id[first]["review"] == "overturned" and by_id[first]["reviewed_label"] == other
    assert by_id[second]["review"] == "confirmed"

    # The monitoring view counts the overturned review and uses reviews as outcomes.
    view = client.get(
        f"/v1/projects/{project}/models/risk/versions/1/monitoring", headers=approver.headers
    )
    assert view.status_code == 200, view.text
    reviews = view.json()["reviews"]
    assert reviews["overturned"] == 1 and reviews["confirmed"] == 1
    assert reviews["overturned_predictions"] == [first]
    window = view.json()["windows"][-1]
    assert window["quality"]["outcomes"] == 2 and window["quality"]["accuracy"] == 0.5


def test_outcomes_are_recorded_once_with_a_known_label(
    client, make_caller, project, make_version, paths, events
) -> None:
    make_version(project)
    app = make_caller("predictor", project)
    auditor = make_caller("auditor", project)
    preds = _predict(client, paths.predict(project, "risk", 1), app.headers, TEXTS[:2])
    pid = preds[0]["prediction_id"]
    path = f"/v1/projects/{project}/predictions/{pid}:outcome"
    bad = client.post(path, json={"label": "maybe"}, headers=app.headers)
    assert bad.status_code == 422 and "maybe" in bad.json()["detail"]
    ok = client.post(path, json={"label": preds[0]["label"]}, headers=app.headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["correct"] is True
    again = client.post(path, json={"label": preds[0]["label"]}, headers=app.headers)
    assert again.status_code == 409
    forbidden = client.post(
        f"/v1/projects/{project}/predictions/{preds[1]['prediction_id']}:outcome",
        json={"label": "accept"},
        headers=auditor.headers,
    )
    assert forbidden.status_code == 403
    missing = client.post(
        f"/v1/projects/{project}/predictions/prd_nope:outcome",
        json={"label": "accept"},
        headers=app.headers,
    )
    assert missing.status_code == 404
    recorded = events("prediction.outcome_recorded")
    assert len(recorded) == 1 and recorded[0]["objects"]["prediction"] == pid
    assert recorded[0]["details"]["correct"] is True


def test_monitoring_off_still_applies_decision_rules(
    client, runtime, make_caller, project, make_version, paths, events, monkeypatch
) -> None:
    """Aggregates can be turned off; decision rules stay on unless turned off apart."""
    from sqlmodel import select

    from privet.config import clear_settings_caches
    from privet.db import session_scope
    from privet.monitoring.tables import MonitoringAggregate

    monkeypatch.setenv("PRIVET_MONITORING_ENABLED", "false")
    clear_settings_caches()
    make_version(project)
    app = make_caller("predictor", project)
    preds = _predict(client, paths.predict(project, "risk", 1), app.headers, TEXTS)
    assert all(p["decision_rules"] for p in preds)
    assert any(p["decision"] != "final" for p in preds)
    with session_scope(runtime.engine) as session:
        assert session.exec(select(MonitoringAggregate)).all() == []

    monkeypatch.setenv("PRIVET_MONITORING_DECISION_RULES", "false")
    clear_settings_caches()
    preds = _predict(client, paths.predict(project, "risk", 1), app.headers, TEXTS)
    assert all(p["decision"] == "final" and p["decision_rules"] == [] for p in preds)
    assert "decision" not in events("prediction.made")[-1]["details"]
