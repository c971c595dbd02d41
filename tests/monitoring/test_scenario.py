"""The acceptance scenario: a version approved with a validation-time reference serves a
stream whose distribution shifts halfway; outcomes arrive. The drift score crosses its
threshold after the shift and not before, the alert is in the ledger, live accuracy falls,
and with automatic suspension the version stops serving with a 409 problem."""

from __future__ import annotations

import random
from typing import Any

from tests.inference.conftest import WORDS

PURPOSE = "credit_scoring"
BEFORE_WORDS = WORDS[:12]
AFTER_WORDS = WORDS[12:]


def before_text(rng: random.Random) -> str:
    """The population at approval: short texts."""
    return " ".join(rng.choice(BEFORE_WORDS) for _ in range(rng.randint(3, 6)))


def after_text(rng: random.Random) -> str:
    """The population after the business changed: long texts on other words."""
    return " ".join(rng.choice(AFTER_WORDS) for _ in range(rng.randint(40, 70)))


def _stream(client: Any, path: str, headers: Any, texts: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(texts), 50):
        body = {"items": [{"text": t, "purpose": PURPOSE} for t in texts[start : start + 50]]}
        r = client.post(path, json=body, headers=headers)
        assert r.status_code == 200, r.text
        out.extend(r.json()["predictions"])
    return out


def test_shift_is_detected_alerted_and_suspends(
    client, app, runtime, make_caller, project, make_version, paths, events, clock, monkeypatch
) -> None:
    from privet.config import clear_settings_caches
    from privet.db import session_scope
    from privet.inference.service import InferenceService
    from privet.inference.versions import lookup_version
    from privet.monitoring.service import build_reference

    monkeypatch.setenv("PRIVET_MONITORING_AUTO_SUSPEND", "true")
    clear_settings_caches()
    rng = random.Random(7)
    version = make_version(project)
    predictor = make_caller("predictor", project)
    approver = make_caller("approver", project)

    # The validation-time reference: 300 texts of the approval population, labelled
    # (the model was right on 90% of them at approval).
    service = InferenceService.from_runtime(runtime)
    validation = [before_text(rng) for _ in range(300)]
    with session_scope(runtime.engine) as session:
        info = lookup_version(session, project_id=project, model="risk", version="1")
        served = service.served(info)
        probs = served.classifier.predict(validation)
        names = list(info.label_names)
        labels = [names[s.best] for s in probs]
        for i in range(0, 300, 10):
            labels[i] = names[1 - names.index(labels[i])]
        ref = build_reference(session, service=service, info=info, texts=validation, labels=labels)
        assert ref.quality["accuracy"] == 0.9
    path = paths.predict(project, "risk", 1)
    view_path = f"/v1/projects/{project}/models/risk/versions/1/monitoring"

    # First half: the approval population, in one window; outcomes agree with the model.
    before = _stream(client, path, predictor.headers, [before_text(rng) for _ in range(200)])
    for p in before[:30]:
        r = client.post(
            f"/v1/projects/{project}/predictions/{p['prediction_id']}:outcome",
            json={"label": p["label"]},
            headers=predictor.headers,
        )
        assert r.status_code == 201, r.text
    assert events("monitoring.threshold_crossed") == []
    view = client.get(view_path, headers=approver.headers).json()
    (w1,) = view["windows"]
    assert w1["predictions"] == 200 and w1["drifted"] == []
    assert all(s is not None and s < 0.1 for s in w1["drift"].values()), w1["drift"]
    assert w1["quality"]["accuracy"] == 1.0

    # Second half, two windows later: the population shifted.
    clock.advance(2 * 3600)
    after = _stream(client, path, predictor.headers, [after_text(rng) for _ in range(200)])
    crossed = events("monitoring.threshold_crossed")
    features = {e["details"]["feature"] for e in crossed}
    assert "length_psi" in features, crossed
    assert all(e["objects"]["model_version"] == version.id for e in crossed)
    assert all(e["details"]["window_start"] == clock.now.isoformat() for e in crossed)
    psi = next(e for e in crossed if e["details"]["feature"] == "length_psi")
    assert psi["details"]["value_ppm"] > psi["details"]["threshold_ppm"]

    # Outcomes after the shift: the model is mostly wrong now; quality crosses its floor
    # (0.9 at approval minus 0.1) once enough outcomes are in, and the version is suspended.
    statuses = []
    for i, p in enumerate(after[:40]):
        truth = p["label"] if i % 4 == 0 else ("accept" if p["label"] == "reject" else "reject")
        r = client.post(
            f"/v1/projects/{project}/predictions/{p['prediction_id']}:outcome",
            json={"label": truth},
            headers=predictor.headers,
        )
        statuses.append(r.status_code)
    assert set(statuses) == {201}
    quality_alerts = [
        e for e in events("monitoring.threshold_crossed") if e["details"]["feature"] == "accuracy"
    ]
    assert len(quality_alerts) == 1 and quality_alerts[0]["details"]["action"] == "suspend"
    suspended = events("model_version.suspended")
    assert len(suspended) == 1 and suspended[0]["objects"]["model_version"] == version.id

    refused = client.post(
        path,
        json={"items": [{"text": "paid on time", "purpose": PURPOSE}]},
        headers=predictor.headers,
    )
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("model-version-not-serving")
    assert problem["state"] == "suspended" and "suspended" in problem["detail"]

    view = client.get(view_path, headers=approver.headers).json()
    assert view["state"] == "suspended"
    w1, w2 = view["windows"]
    assert w2["predictions"] == 200 and "length_psi" in w2["drifted"]
    assert w2["quality"]["accuracy"] < w1["quality"]["accuracy"]
    assert w2["below_floor"] is True
    assert {a["feature"] for a in view["alerts"]} >= {"length_psi", "accuracy"}

    # The metrics are exported for Prometheus.
    metrics = client.get("/metrics").text
    assert (
        f'privet_monitoring_drift_score{{feature="length_psi",model_version="{version.id}"}}'
        in metrics
    )
    assert "privet_monitoring_suspensions_total" in metrics

    # An engineer cannot resume it; an approver can, and it serves again.
    engineer = make_caller("ml_engineer", project)
    resume = f"/v1/projects/{project}/models/risk/versions/1:resume"
    assert client.post(resume, headers=engineer.headers).status_code == 403
    r = client.post(resume, json={"reason": "retrained features checked"}, headers=approver.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    assert client.post(resume, headers=approver.headers).status_code == 409
    again = client.post(
        path,
        json={"items": [{"text": "paid on time", "purpose": PURPOSE}]},
        headers=predictor.headers,
    )
    assert again.status_code == 200, again.text
    assert len(events("model_version.resumed")) == 1
