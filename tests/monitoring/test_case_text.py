"""The text of a review case (issue 20): sealed for the referred and held predictions
only, never at rest in plaintext, read by the person who may decide the review, and
crypto-shredded (key destroyed, one ledger event) when a review closes the case, when
its retention ends and when its subject is erased."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.inference.conftest import scan_files

PURPOSE = "credit_scoring"
CANARY = "casecanary zq71"
WORDS = ["late payment", "high debt", "paid on time", "bad debt late", "good income", "closed"]


def _case(client: Any, project: str, pid: str, headers: Any) -> Any:
    return client.get(f"/v1/projects/{project}/predictions/{pid}/case", headers=headers)


def _key(runtime: Any, project: str, pid: str) -> Any:
    from privet.crypto import get_data_key
    from privet.db import session_scope
    from privet.inference.cases import case_ref

    with session_scope(runtime.engine) as session:
        return get_data_key(session=session, ref=case_ref(project, pid))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_case_text_is_sealed_read_by_the_reviewer_and_shredded(
    client, runtime, make_caller, project, make_version, paths, events, tmp_path
) -> None:
    from sqlmodel import select

    from privet.db import dispose_engines, session_scope
    from privet.inference import cases
    from privet.inference.tables import PredictionCase

    make_version(project, purposes=(PURPOSE, "marketing"))
    app = make_caller("predictor", project)
    approver = make_caller("approver", project)
    auditor = make_caller("auditor", project)
    steward = make_caller("data_steward", None, name="steward")
    texts = [f"{WORDS[i % len(WORDS)]} {CANARY} {i}" for i in range(8)]
    # No decision rule covers marketing: those two are final (one purpose per request).
    preds = []
    for purpose, part in ((PURPOSE, range(6)), ("marketing", range(6, 8))):
        items = [{"text": texts[i], "purpose": purpose, "subject_id": f"subj-{i}"} for i in part]
        r = client.post(
            paths.predict(project, "risk", 1), json={"items": items}, headers=app.headers
        )
        assert r.status_code == 200, r.text
        preds += r.json()["predictions"]
    held = [i for i, p in enumerate(preds) if p["decision"] != "final"]
    final = [i for i, p in enumerate(preds) if p["decision"] == "final"]
    assert len(held) >= 3 and final, [p["decision"] for p in preds]
    made = {e["objects"]["prediction"]: e["details"] for e in events("prediction.made")}
    for i, p in enumerate(preds):
        assert made[p["prediction_id"]].get("case_text") == ("sealed" if i in held else None)

    # Only the held predictions have a case, and it is sealed: no plaintext at rest.
    with session_scope(runtime.engine) as session:
        rows = session.exec(select(PredictionCase)).all()
        assert sorted(r.prediction_id for r in rows) == sorted(
            preds[i]["prediction_id"] for i in held
        )
        assert all(r.text_sealed and CANARY.encode() not in r.text_sealed for r in rows)
    dispose_engines()  # checkpoint the SQLite WAL into the database file
    assert scan_files(tmp_path, [CANARY.encode(), CANARY.encode("utf-16-le")]) == []
    assert scan_files(tmp_path, [project.encode()])  # the scan does see the database

    # The reviewer reads each case; the application and the auditor are refused.
    for i in held:
        got = _case(client, project, preds[i]["prediction_id"], approver.headers)
        assert got.status_code == 200, got.text
        assert got.json()["text"] == texts[i]
    first, erased, expired = (preds[i]["prediction_id"] for i in held[:3])
    for who in (app, auditor):
        refused = _case(client, project, first, who.headers)
        assert refused.status_code == 403 and CANARY not in refused.text
    none = _case(client, project, preds[final[0]]["prediction_id"], approver.headers)
    assert none.status_code == 404 and "kept no text" in none.json()["detail"]
    reads = [
        e
        for e in events("auth.decision")
        if e["details"]["action"] == "prediction.review" and e["objects"].get("prediction") == first
    ]
    assert len(reads) == 3 and sorted(e["outcome"] for e in reads) == ["allow", "deny", "deny"]

    # A review closes the case: its key is destroyed and the API says why.
    r = client.post(paths.review(project, first), json={"reason": "ok"}, headers=approver.headers)
    assert r.status_code == 201, r.text
    gone = _case(client, project, first, make_caller("approver", project, "other").headers)
    assert gone.status_code == 410 and "a review closed the case" in gone.json()["detail"]
    assert _key(runtime, project, first).destroyed_at is not None

    # Erasing the subject shreds the case about them.
    subject = f"subj-{held[1]}"
    r = client.post(
        "/v1/data-subject-requests",
        json={"type": "erasure", "subject_id": subject},
        headers=steward.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["result"]["case_texts_shredded"] == 1
    gone = _case(client, project, erased, approver.headers)
    assert gone.status_code == 410 and "data subject was erased" in gone.json()["detail"]
    assert _key(runtime, project, erased).destroyed_at is not None

    # Past its retention the case is refused at once, and the sweep destroys its key.
    with session_scope(runtime.engine) as session:
        row = session.get(PredictionCase, expired)
        assert row is not None
        row.created_at = row.created_at - cases.retention() - timedelta(minutes=1)
        session.add(row)
    gone = _case(client, project, expired, approver.headers)
    assert gone.status_code == 410 and "past its retention" in gone.json()["detail"]
    assert _key(runtime, project, expired).destroyed_at is None
    with session_scope(runtime.engine) as session:
        assert cases.sweep_case_retention(session) == 1
        assert cases.sweep_case_retention(session) == 0
    assert _key(runtime, project, expired).destroyed_at is not None
    gone = _case(client, project, expired, approver.headers)
    assert gone.status_code == 410 and "retention ended" in gone.json()["detail"]

    shredded = {e["objects"]["prediction"]: e for e in events("prediction.case_shredded")}
    assert {p: e["details"]["reason"] for p, e in shredded.items()} == {
        first: "reviewed",
        erased: "erasure",
        expired: "retention",
    }
    assert shredded[first]["actor"] == approver.principal_id
    # The other cases are untouched.
    rest = preds[held[3]]["prediction_id"] if len(held) > 3 else None
    if rest is not None:
        assert _case(client, project, rest, approver.headers).status_code == 200
