"""The ``dsr`` report: the answer to one data-subject request (served under
``/v1/data-subject-requests/{id}/report``, not in the registry of ``/v1/reports``
kinds). For access, what the platform holds about the subject; for erasure and
objection, what was done."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from privet.compliance import discovery
from privet.compliance import service as compliance
from privet.compliance.tables import DataSubjectRequest, RequestType
from privet.reports.evidence import Evidence
from privet.reports.kind import ReportRuntime
from privet.reports.kinds.subject_access import access_tables
from privet.reports.model import Report, Table, new_report

TITLES = {
    "access": "Your personal data (GDPR Art. 15 access request)",
    "erasure": "Erasure request (GDPR Art. 17): what was erased",
    "objection": "Objection to processing (GDPR Art. 21)",
}
_STEPS = {
    "dsr.received": "Request received and logged",
    "dsr.acknowledged": "Receipt acknowledged",
    "dsr.completed": "Request answered",
    "dsr.objection.recorded": "Objection recorded",
    "dsr.subject_shredded": "Subject id destroyed (end of log retention)",
    "model_version.erasure_flagged": "Model version flagged (trained on erased records)",
}
WITHHELD = "withheld (shown only to the principal who took the request)"


def _step(event: dict[str, Any]) -> str:
    if event["type"] == "auth.decision":
        verdict = "allowed" if event["outcome"] == "allow" else "denied"
        return f"{event['details'].get('action')} {verdict} for {event['actor']}"
    return _STEPS.get(event["type"], str(event["type"]))


def _facts(request: DataSubjectRequest) -> list[tuple[str, Any]]:
    return [
        ("Request", request.id),
        ("Type", request.type),
        ("Regime", request.regime.upper()),
        ("Received", request.received_at),
        ("Respond by", request.due_at),
        ("Answered", request.completed_at),
        ("State", request.state),
        ("On time", compliance.public(request).on_time),
        ("Outcome", request.outcome),
    ]


def _access(
    session: Session,
    runtime: ReportRuntime,
    *,
    actor: str,
    request: DataSubjectRequest,
    report: Report,
    ev: Evidence,
) -> None:
    """What the platform holds about the subject now, and a note when that differs from
    what it held when the request was answered."""
    sealed = compliance.unseal_subject(session, runtime=runtime, row=request)
    findings = discovery.discover(session, runtime=runtime, subject_id=sealed["subject_id"])
    shown = sealed["subject_id"] if actor == request.submitted_by else WITHHELD
    report.facts.insert(1, ("Subject id", shown))
    access_tables(report, ev, findings)
    recorded = (request.result or {}).get("findings")
    if recorded is not None and recorded != findings.summary():
        report.notes.insert(
            0,
            "This report shows what the platform holds now "
            f"({report.generated_at:%Y-%m-%d %H:%M} UTC). When the request was answered, "
            "it held "
            f"{len(recorded.get('dataset_versions', []))} dataset version(s), "
            f"{len(recorded.get('model_versions', []))} model version(s) and "
            f"{recorded.get('predictions', 0)} prediction(s) about you; what was erased "
            "since then is no longer listed.",
        )


def _erasure(request: DataSubjectRequest, report: Report, ev: Evidence) -> None:
    res = request.result
    for d in res.get("datasets", []):
        ev.events(
            object_id=d["dataset"],
            types=("dataset.subjects.erased", "dataset.version.shredded"),
            limit=50,
        )
    report.tables.append(
        Table(
            "erased",
            "Datasets the records were erased from",
            [
                ("dataset", "Dataset"),
                ("rows_removed", "Records removed"),
                ("new_version", "New version (without the records)"),
                ("shredded_versions", "Versions destroyed"),
            ],
            res.get("datasets", []),
        )
    )
    report.tables.append(
        Table(
            "models",
            "Models trained on the erased records",
            [
                ("model_version", "Model version"),
                ("project", "Project"),
                ("remedy", "Remedy"),
                ("justification", "Why"),
                ("retrain_job", "Retraining job"),
            ],
            res.get("flags", []),
            empty="No model was trained on the erased records.",
        )
    )
    report.notes.append(
        f"Remedy policy in force: {res.get('remedy_policy')}. Destroyed versions cannot "
        "be decrypted any more, including from backups: their keys were destroyed."
    )


def build_request_report(
    session: Session, runtime: ReportRuntime, *, actor: str, request: DataSubjectRequest
) -> Report:
    """The answer to one request: for access, what the platform holds about the subject;
    for erasure and objection, what was done.

    The subject's own id appears only in the copy fetched by the principal who took the
    request (who answers the subject); anyone else allowed to read the request (an
    auditor) gets it withheld."""
    ev = Evidence(session)
    report = new_report(
        "dsr",
        TITLES.get(request.type, "Data-subject request"),
        actor=actor,
        params={"request": request.id},
    )
    rev = ev.events(object_id=request.id, limit=200)
    report.data = {"request_type": request.type, "request_id": request.id}
    report.facts = _facts(request)
    report.tables.append(
        Table(
            "request_events",
            "Handling of the request",
            [("event", "Step"), ("time", "Time"), ("evidence", "Log event")],
            [
                {"event": _step(e.event), "time": e.event["time"], "evidence": f"#{e.index}"}
                for e in rev
            ],
        )
    )
    if request.type == RequestType.access.value:
        _access(session, runtime, actor=actor, request=request, report=report, ev=ev)
    elif request.type == RequestType.erasure.value:
        _erasure(request, report, ev)
    else:
        report.tables.append(
            Table(
                "objection",
                "Purposes objected to",
                [("purpose", "Purpose")],
                [{"purpose": x} for x in request.result.get("purposes", [])],
            )
        )
    report.ledger = ev.to_json()
    return report
