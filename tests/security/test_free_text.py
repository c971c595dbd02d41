"""Free text a user can type never enters the ledger, and prose that may describe a person
is never stored in plaintext and goes with the person when they are erased.

Every free-text field a caller can set, and what it is:

- names (project, dataset): identifiers; plaintext at rest, never in the ledger;
- descriptions (project, dataset): operator prose about an object; plaintext at rest (no
  data-subject content is expected there), never in the ledger;
- review and contest reasons: prose about a decision on a person: sealed with a
  per-review data key, shredded when the subject of the prediction is erased; the ledger
  holds only a keyed digest;
- the DSR requester: sealed with the request's key (as before); the DSR channel is an
  enumeration (a free-text channel is refused);
- the text of a job's failure (an exception message may quote a training row): sealed
  with a per-job data key, readable by the job's readers; the ledger holds an error code
  and the exception's class name only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.inference.conftest import classifier_weights, register_version, tiny_base  # noqa: F401
from tests.jobs.conftest import job_settings, submit, tiny_model  # noqa: F401

SUBJECT = "ft-subject-0001"
CANARY = {
    "project_name": "ftcanary-projname",
    "project_description": "FTCANARY-project-description-31",
    "dataset_name": "ftcanary-dsname",
    "dataset_description": "FTCANARY-dataset-description-32",
    "review_reason": "FTCANARY-review-reason-33",
    "contest_reason": "FTCANARY-contest-reason-34",
    "dsr_requester": "FTCANARY-requester-35",
    "dsr_channel": "FTCANARY-chan-36",
    "job_error": "FTCANARY-job-error-37",
}
#: prose that may describe a person: never in plaintext in any file or database page
SEALED = ("review_reason", "contest_reason", "dsr_requester", "job_error")


def _ledger_text(runtime: Any) -> list[str]:
    from sqlalchemy import select

    from privet.db import session_scope
    from privet.ledger.tables import LedgerEntry

    with session_scope(runtime.engine) as session:
        rows = session.execute(select(LedgerEntry.event).order_by(LedgerEntry.id)).scalars()  # type: ignore[call-overload]
        return [bytes(r).decode() for r in rows]


def _plaintext_hits(runtime: Any, db_url: str, needles: list[str]) -> list[str]:
    """Where (file or table) any needle appears in plaintext: every file under PRIVET_HOME
    and the SQLite file (WAL checkpointed), or every PostgreSQL table's rows as text."""
    hits: list[str] = []
    files = [p for p in runtime.settings.home.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        from privet.db import dispose_engines

        dispose_engines()  # checkpoint the WAL into the database file
        db = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in db.parent.glob(db.name + "*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        hits += [f"{n} in {path.name}" for n in needles if n.encode() in data]
    if db_url.startswith("postgresql"):
        from sqlalchemy import text

        with runtime.engine.connect() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            for table in list(tables):
                rows = conn.execute(text(f'SELECT CAST(t.* AS text) FROM "{table}" AS t')).scalars()
                dump = "\n".join(r or "" for r in rows)
                hits += [f"{n} in table {table}" for n in needles if n in dump]
    return hits


def _failing_worker(runtime: Any, settings: Any) -> Any:
    """A worker whose training fails with an exception quoting a (canary) training row."""
    from privet.jobs.worker import Worker

    class Failing(Worker):
        def train_job(self, *args: Any, **kwargs: Any) -> Any:
            raise ValueError(f"could not tokenize row 7: {CANARY['job_error']!r}")

    return Failing(runtime, worker_id="ft-worker", settings=settings)


def test_free_text_is_not_in_the_ledger_nor_in_plaintext_and_erasure_shreds_reasons(
    client,
    admin,
    make_caller,
    runtime,
    db_url,
    tiny_base,  # noqa: F811
    job_settings,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/v1/projects",
        json={"name": CANARY["project_name"], "description": CANARY["project_description"]},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    rows = make_rows(40)
    rows[3]["customer"] = SUBJECT
    decl = declarations(name=CANARY["dataset_name"], description=CANARY["dataset_description"])
    r = upload(client, admin.headers, project, to_csv(rows), decl=decl)
    assert r.status_code == 201, r.text
    version_id = r.json()["id"]

    # A failed job: its error text reaches its readers, not the ledger.
    engineer = make_caller("ml_engineer", project, name="engineer")
    r = submit(client, engineer, project, version_id, base_model=tiny_model_name())
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert _failing_worker(runtime, job_settings).run(max_jobs=1) == 1
    job = client.get(f"/v1/projects/{project}/training-jobs/{job_id}", headers=engineer.headers)
    assert job.json()["state"] == "failed"

    # A prediction about the subject, contested and reviewed with reasons.
    register_version(
        runtime,
        project,
        base_model=tiny_base.name,
        weights=classifier_weights(tiny_base.name, 2),
    )
    app = make_caller("predictor", project, name="scoring-app")
    approver = make_caller("approver", project, name="reviewer")
    r = client.post(
        f"/v1/projects/{project}/models/risk/versions/1:predict",
        json={
            "items": [{"text": "late payment", "purpose": "credit_scoring", "subject_id": SUBJECT}]
        },
        headers=app.headers,
    )
    assert r.status_code == 200, r.text
    prediction = r.json()["predictions"][0]["prediction_id"]
    review_path = f"/v1/projects/{project}/predictions/{prediction}:review"
    contest = client.post(
        review_path,
        json={"kind": "contest", "reason": CANARY["contest_reason"]},
        headers=approver.headers,
    )
    review = client.post(
        review_path,
        json={"decision": "confirmed", "reason": CANARY["review_reason"]},
        headers=approver.headers,
    )
    assert contest.status_code == 201 and review.status_code == 201, (contest.text, review.text)

    # Data-subject requests: a free-text channel, then an erasure received by e-mail.
    steward = make_caller("data_steward", None, name="steward")
    free_channel = client.post(
        "/v1/data-subject-requests",
        json={"type": "access", "subject_id": SUBJECT, "channel": CANARY["dsr_channel"]},
        headers=steward.headers,
    )
    erasure = client.post(
        "/v1/data-subject-requests",
        json={
            "type": "erasure",
            "subject_id": SUBJECT,
            "channel": "email",
            "requester": CANARY["dsr_requester"],
        },
        headers=steward.headers,
    )

    # 1. No free text of any kind in any ledger event.
    events = _ledger_text(runtime)
    leaked = sorted({f for f, c in CANARY.items() for e in events if c in e})
    assert leaked == [], f"free text in the ledger: {leaked}"

    # 2. The channel is an enumeration: free text is refused and says what is allowed.
    assert free_channel.status_code == 422, free_channel.text
    assert "email" in free_channel.text and CANARY["dsr_channel"] not in events
    assert erasure.status_code == 201, erasure.text
    assert erasure.json()["channel"] == "email"

    # 3. Readers still get the prose: the job's error, the reasons.
    job = client.get(f"/v1/projects/{project}/training-jobs/{job_id}", headers=engineer.headers)
    body = job.json()
    assert CANARY["job_error"] in (body["error_detail"] or ""), body
    assert body["error_code"] == "training_error" and CANARY["job_error"] not in body["reason"]
    assert contest.json()["reason"] == CANARY["contest_reason"]
    assert review.json()["reason"] == CANARY["review_reason"]

    # 4. The erasure shredded the reasons given about the subject's decision.
    listed = client.get(
        f"/v1/projects/{project}/predictions/{prediction}/reviews", headers=approver.headers
    )
    assert listed.status_code == 200, listed.text
    reviews = listed.json()
    assert [x["kind"] for x in reviews] == ["contest", "review"]
    assert all(x["reason"] is None and x["reason_shredded"] for x in reviews), reviews
    assert erasure.json()["result"]["review_reasons_shredded"] == 2

    # 5. No prose about a person in plaintext in any file or database page.
    hits = _plaintext_hits(runtime, db_url, [CANARY[f] for f in SEALED])
    assert hits == [], hits


def tiny_model_name() -> str:
    from tests.jobs.conftest import TINY

    return TINY


def test_review_reasons_are_readable_until_erasure(
    client,
    admin,
    make_caller,
    runtime,
    tiny_base,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    """A reason of a prediction without a subject stays readable to reviewers (sealed), and
    only reviewers read it."""
    r = client.post("/v1/projects", json={"name": "reasons"}, headers=admin.headers)
    project = r.json()["id"]
    register_version(
        runtime, project, base_model=tiny_base.name, weights=classifier_weights(tiny_base.name, 2)
    )
    app = make_caller("predictor", project, name="scoring-app")
    approver = make_caller("approver", project, name="reviewer")
    r = client.post(
        f"/v1/projects/{project}/models/risk/versions/1:predict",
        json={"items": [{"text": "paid on time", "purpose": "credit_scoring"}]},
        headers=app.headers,
    )
    prediction = r.json()["predictions"][0]["prediction_id"]
    r = client.post(
        f"/v1/projects/{project}/predictions/{prediction}:review",
        json={"decision": "confirmed", "reason": "income verified by phone"},
        headers=approver.headers,
    )
    assert r.status_code == 201, r.text
    path = f"/v1/projects/{project}/predictions/{prediction}/reviews"
    listed = client.get(path, headers=approver.headers)
    assert listed.status_code == 200, listed.text
    assert [x["reason"] for x in listed.json()] == ["income verified by phone"]
    assert listed.json()[0]["reason_shredded"] is False
    assert client.get(path, headers=app.headers).status_code == 403


@pytest.mark.parametrize(
    "details",
    [
        {"reason": "ValueError: could not parse 'Alice Smith, born 1970-01-01'"},
        {"note": "called on the phone\nabout her loan"},
        {"nested": {"why": ["x", "free text with spaces"]}},
        {"long": "x" * 300},
    ],
)
def test_the_ledger_refuses_prose_in_event_details(runtime, details: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Event details hold ids, codes and numbers: a string with whitespace (or over 200
    characters) is prose and is refused before it reaches the append-only log."""
    from privet import ledger
    from privet.db import session_scope

    with pytest.raises(ledger.LedgerEventError, match="prose"):
        with session_scope(runtime.engine) as session:
            ledger.emit(session, type="test.prose", actor=None, details=details)
    assert not any('"test.prose"' in e for e in _ledger_text(runtime))
