"""GDPR Art. 21 at prediction time: a request naming a subject who objected to processing
for its purpose is refused (409 ``subject-objected``, audited), before any text is
classified; other purposes, other subjects and requests without subjects are served."""

from __future__ import annotations

PURPOSE = "credit_scoring"


def test_objected_subject_is_refused(
    client, runtime, admin, make_caller, project, make_version, paths, events
) -> None:  # type: ignore[no-untyped-def]
    from privet.compliance.service import subject_pseudonym

    make_version(project, purposes=(PURPOSE, "marketing"))
    predictor = make_caller("predictor", project)
    steward = make_caller("data_steward", None, name="steward")
    for subject, purposes in (("cust-objects-all", []), ("cust-objects-marketing", ["marketing"])):
        r = client.post(
            "/v1/data-subject-requests",
            headers=steward.headers,
            json={"type": "objection", "subject_id": subject, "purposes": purposes},
        )
        assert r.status_code == 201, r.text
    path = paths.predict(project, "risk", 1)

    def predict(*subjects: str | None, purpose: str = PURPOSE):  # type: ignore[no-untyped-def]
        items = [
            {"text": f"late payment {i}", "subject_id": s} if s else {"text": f"paid {i}"}
            for i, s in enumerate(subjects)
        ]
        return client.post(
            path, json={"items": items, "purpose": purpose}, headers=predictor.headers
        )

    refused = predict("cust-ok", "cust-objects-all", None, "cust-objects-all")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("/subject-objected")
    assert problem["items"] == [1, 3] and problem["purpose"] == PURPOSE
    assert "items[1], items[3]" in problem["detail"] and "Art. 21" in problem["detail"]
    assert "cust-objects-all" not in refused.text
    (event,) = [
        e for e in events("prediction.refused") if e["details"]["reason"] == "subject-objected"
    ]
    assert event["outcome"] == "deny" and event["actor"] == predictor.principal_id
    assert event["digests"]["subject"] == subject_pseudonym(runtime, "cust-objects-all")
    assert event["details"]["items"] == 4 and event["details"]["subject_items"] == 2
    assert "cust-objects-all" not in str(events(""))
    assert events("prediction.made") == []  # nothing was classified or recorded

    # An objection limited to marketing stops marketing, not credit scoring.
    assert predict("cust-objects-marketing").status_code == 200
    assert predict("cust-objects-marketing", purpose="marketing").status_code == 409
    # Without the objecting subject, or without subjects at all, the batch is served.
    served = predict("cust-ok", None)
    assert served.status_code == 200 and len(served.json()["predictions"]) == 2
    assert len(events("prediction.made")) == 3
