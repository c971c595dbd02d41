"""Audited inference over the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from privet.config import clear_settings_caches

PURPOSE = "credit_scoring"
TEXTS = ["the customer paid on time", "late payment and high debt", "account closed"]


def _items(texts: list[str], **extra: Any) -> dict[str, Any]:
    return {"items": [{"text": t, "purpose": PURPOSE, **extra} for t in texts]}


def test_predict_batch_records_one_event_per_item(
    client, admin, make_caller, project, make_version, paths, events
) -> None:
    version = make_version(project)
    app = make_caller("predictor", project, name="scoring-app")
    body = {
        "items": [
            {"text": TEXTS[0], "purpose": PURPOSE, "subject_id": "customer-42"},
            {"text": TEXTS[1], "purpose": PURPOSE},
            {"text": TEXTS[2], "purpose": PURPOSE, "subject_id": "customer-43"},
        ]
    }
    response = client.post(paths.predict(project, "risk", 1), json=body, headers=app.headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model_version_id"] == version.id and data["model_version"] == 1
    preds = data["predictions"]
    assert len(preds) == 3
    for p in preds:
        assert p["label"] in ("accept", "reject")
        assert set(p["probabilities"]) == {"accept", "reject"}
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-4
        assert p["score"] == max(p["probabilities"].values())
        assert p["model_version_id"] == version.id and p["purpose"] == PURPOSE
    assert len({p["prediction_id"] for p in preds}) == 3

    made = events("prediction.made")
    assert [e["objects"]["prediction"] for e in made] == [p["prediction_id"] for p in preds]
    first = made[0]
    assert first["actor"] == app.principal_id and first["project"] == project
    assert first["objects"]["model_version"] == version.id
    assert first["digests"]["input"].startswith("hmac-sha256:")
    assert first["digests"]["subject"].startswith("hmac-sha256:")
    assert "subject" not in made[1]["digests"]
    assert made[0]["digests"]["subject"] != made[2]["digests"]["subject"]
    details = first["details"]
    assert details["purpose"] == PURPOSE and details["human_reviewed"] is False
    assert details["label"] == preds[0]["label"]
    assert details["score_ppm"] == round(preds[0]["score"] * 1_000_000)
    decision = [
        e for e in events("auth.decision") if e["details"]["action"] == "model_version.predict"
    ]
    assert decision[-1]["outcome"] == "allow"

    # Same text → same keyed digest; the digest is not a plain SHA-256 of the text.
    import hashlib

    again = client.post(
        paths.predict(project, "risk", 1), json=_items([TEXTS[0]]), headers=app.headers
    )
    assert again.status_code == 200
    made = events("prediction.made")
    assert made[-1]["digests"]["input"] == made[0]["digests"]["input"]
    assert hashlib.sha256(TEXTS[0].encode()).hexdigest() not in made[0]["digests"]["input"]


def test_serving_route_uses_newest_approved_version(
    client, make_caller, project, make_version, change_state, paths
) -> None:
    v1 = make_version(project)
    v2 = make_version(project, seed=1)  # candidate until approved
    change_state(v2.id, "candidate")
    app = make_caller("predictor", project)
    r = client.post(paths.predict(project, "risk"), json=_items(TEXTS[:1]), headers=app.headers)
    assert r.status_code == 200 and r.json()["model_version_id"] == v1.id
    change_state(v2.id, "approved")
    r = client.post(paths.predict(project, "risk"), json=_items(TEXTS[:1]), headers=app.headers)
    assert r.status_code == 200 and r.json()["model_version_id"] == v2.id
    # By version id and by model id too.
    r = client.post(
        paths.predict(project, v1.model_id, v1.id), json=_items(TEXTS[:1]), headers=app.headers
    )
    assert r.status_code == 200 and r.json()["model_version_id"] == v1.id


def test_unapproved_and_retired_versions_refuse_and_the_refusal_is_logged(
    client, make_caller, project, make_version, change_state, paths, events
) -> None:
    version = make_version(project, state="candidate")
    app = make_caller("predictor", project)
    r = client.post(paths.predict(project, "risk", 1), json=_items(TEXTS), headers=app.headers)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/model-version-not-serving")
    assert problem["state"] == "candidate"
    # The serving route has no approved version either: same refusal.
    r = client.post(paths.predict(project, "risk"), json=_items(TEXTS), headers=app.headers)
    assert r.status_code == 409
    change_state(version.id, "approved")
    assert (
        client.post(
            paths.predict(project, "risk", 1), json=_items(TEXTS), headers=app.headers
        ).status_code
        == 200
    )
    change_state(version.id, "retired")
    r = client.post(paths.predict(project, "risk", 1), json=_items(TEXTS), headers=app.headers)
    assert r.status_code == 409 and r.json()["state"] == "retired"

    refused = events("prediction.refused")
    assert [e["details"]["state"] for e in refused] == ["candidate", "candidate", "retired"]
    assert all(
        e["outcome"] == "deny" and e["objects"]["model_version"] == version.id for e in refused
    )
    denies = [
        e
        for e in events("auth.decision")
        if e["details"]["action"] == "model_version.predict" and e["outcome"] == "deny"
    ]
    assert len(denies) == 3
    assert all("model.only-approved-versions-serve" in e["details"]["policies"] for e in denies)
    assert len(events("prediction.made")) == 3  # only the approved window served


def test_retired_version_stops_within_the_state_ttl(
    client, make_caller, project, make_version, change_state, paths, monkeypatch, app
) -> None:
    import time

    monkeypatch.setenv("PRIVET_INFERENCE_STATE_TTL_S", "0.5")
    clear_settings_caches()
    version = make_version(project)
    caller = make_caller("predictor", project)
    assert (
        client.post(
            paths.predict(project, "risk", 1), json=_items(TEXTS), headers=caller.headers
        ).status_code
        == 200
    )
    assert version.id in app.state.inference.cache
    change_state(version.id, "retired")  # as another replica would, in the database
    time.sleep(0.6)
    r = client.post(paths.predict(project, "risk", 1), json=_items(TEXTS), headers=caller.headers)
    assert r.status_code == 409
    assert version.id not in app.state.inference.cache  # memory freed too


def test_policy_refusals_are_403_and_cross_project_is_404(
    client, admin, make_caller, project, make_version, paths, events
) -> None:
    make_version(project)
    engineer = make_caller("ml_engineer", project)
    r = client.post(paths.predict(project, "risk", 1), json=_items(TEXTS), headers=engineer.headers)
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    app = make_caller("predictor", project)
    wrong_purpose = {"items": [{"text": TEXTS[0], "purpose": "marketing"}]}
    r = client.post(paths.predict(project, "risk", 1), json=wrong_purpose, headers=app.headers)
    assert r.status_code == 403
    denies = [e for e in events("auth.decision") if e["outcome"] == "deny"]
    assert any("data.purpose-limitation.prediction" in e["details"]["policies"] for e in denies)
    assert events("prediction.made") == []

    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()["id"]
    outsider = make_caller("predictor", other)
    r = client.post(paths.predict(project, "risk", 1), json=_items(TEXTS), headers=outsider.headers)
    assert r.status_code == 404
    r = client.post(paths.predict(other, "risk", 1), json=_items(TEXTS), headers=outsider.headers)
    assert r.status_code == 404  # the model lives in the first project only
    r = client.post(paths.predict(project, "risk", 7), json=_items(TEXTS), headers=app.headers)
    assert r.status_code == 404


def test_bad_requests_are_422_and_leave_nothing(
    client, make_caller, project, make_version, paths, events, monkeypatch
) -> None:
    make_version(project)
    app = make_caller("predictor", project)
    url = paths.predict(project, "risk", 1)
    mixed = {"items": [{"text": "a", "purpose": PURPOSE}, {"text": "b", "purpose": "other"}]}
    r = client.post(url, json=mixed, headers=app.headers)
    assert r.status_code == 422 and "one purpose" in r.json()["detail"]
    r = client.post(url, json={"items": [{"text": "a"}]}, headers=app.headers)
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    r = client.post(url, json={"items": [{"text": "a"}], "purpose": PURPOSE}, headers=app.headers)
    assert r.status_code == 200  # the request's default purpose
    r = client.post(url, json={"items": []}, headers=app.headers)
    assert r.status_code == 422
    monkeypatch.setenv("PRIVET_INFERENCE_MAX_ITEMS", "2")
    clear_settings_caches()
    client.app.state.inference = None  # settings are read when the service is built
    r = client.post(url, json=_items(TEXTS), headers=app.headers)
    assert r.status_code == 422 and "at most 2" in r.json()["detail"]
    assert len(events("prediction.made")) == 1


def test_review_and_contest(client, make_caller, project, make_version, paths, events) -> None:
    make_version(project)
    app = make_caller("predictor", project)
    approver = make_caller("approver", project, name="reviewer")
    pred = client.post(
        paths.predict(project, "risk", 1), json=_items(TEXTS[:1]), headers=app.headers
    ).json()["predictions"][0]
    pid = pred["prediction_id"]

    # The application itself may not review its decisions.
    assert client.post(paths.review(project, pid), json={}, headers=app.headers).status_code == 403
    r = client.post(
        paths.review(project, pid),
        json={"kind": "contest", "reason": "the customer disputes the decision"},
        headers=approver.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["decision"] == "pending" and r.json()["human_reviewed"] is False
    other = "reject" if pred["label"] == "accept" else "accept"
    r = client.post(
        paths.review(project, pid),
        json={"decision": "overturned", "label": other, "reason": "income was verified"},
        headers=approver.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["human_reviewed"] is True and r.json()["label"] == other
    # Decided once, it is decided again only by another person (human_review.cedar).
    again = client.post(
        paths.review(project, pid), json={"decision": "confirmed"}, headers=approver.headers
    )
    assert again.status_code == 403 and "review.redecided-by-another-person" in again.text
    second = make_caller("approver", project, name="reviewer-2")
    bad = client.post(
        paths.review(project, pid),
        json={"decision": "overturned", "label": "maybe"},
        headers=second.headers,
    )
    assert bad.status_code == 422
    assert (
        client.post(
            paths.review(project, "prd_missing"), json={}, headers=approver.headers
        ).status_code
        == 404
    )

    (contested,) = events("prediction.contested")
    (reviewed,) = events("prediction.reviewed")
    assert (
        contested["objects"]["prediction"] == pid and contested["details"]["decision"] == "pending"
    )
    assert contested["digests"]["reason"].startswith("hmac-sha256:")
    assert reviewed["actor"] == approver.principal_id
    assert reviewed["details"] == {
        "kind": "review",
        "decision": "overturned",
        "label": other,
        "original_label": pred["label"],
        "human_reviewed": True,
    }


def test_explanation_needs_the_exact_input(
    client, make_caller, project, make_version, change_state, paths, events
) -> None:
    version = make_version(project)
    app = make_caller("predictor", project)
    text = "late payment high debt on the credit card"
    pred = client.post(
        paths.predict(project, "risk", 1), json=_items([text]), headers=app.headers
    ).json()["predictions"][0]
    pid = pred["prediction_id"]

    r = client.post(paths.explain(project, pid), json={"text": text + " "}, headers=app.headers)
    assert r.status_code == 422 and r.json()["type"].endswith("/input-digest-mismatch")
    (refused,) = events("prediction.explanation_refused")
    assert refused["outcome"] == "deny" and refused["objects"]["prediction"] == pid

    change_state(version.id, "retired")  # past decisions stay explainable
    r = client.post(paths.explain(project, pid), json={"text": text}, headers=app.headers)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["label"] == pred["label"] and data["method"] == "occlusion"
    assert abs(data["score"] - pred["score"]) < 1e-4  # the same version recomputed
    tokens = [t["token"] for t in data["tokens"]]
    assert tokens[:3] == ["late", "payment", "high"]
    assert data["tokens"][0]["start"] == 0 and data["tokens"][0]["end"] == 4
    (explained,) = events("prediction.explained")
    assert explained["digests"]["input"] == events("prediction.made")[0]["digests"]["input"]
    assert "text" not in str(explained["details"])

    engineer = make_caller("ml_engineer", project)
    assert (
        client.post(
            paths.explain(project, pid), json={"text": text}, headers=engineer.headers
        ).status_code
        == 403
    )


def test_metrics_show_cache_and_load_time(
    client, make_caller, project, make_version, paths
) -> None:
    make_version(project)
    app = make_caller("predictor", project)
    for _ in range(3):
        assert (
            client.post(
                paths.predict(project, "risk", 1), json=_items(TEXTS), headers=app.headers
            ).status_code
            == 200
        )
    text = client.get("/metrics").text
    assert "privet_inference_model_load_seconds_count 1.0" in text
    assert "privet_inference_model_cache_misses_total 1.0" in text
    # At least one hit per later request (other users of the cache, e.g. monitoring's
    # embedding hook, may look the version up too).
    hits = re.search(r"^privet_inference_model_cache_hits_total ([0-9.]+)$", text, re.M)
    assert hits is not None and float(hits.group(1)) >= 2
    assert "privet_inference_models_cached 1.0" in text
    assert "privet_inference_batch_items_count" in text
