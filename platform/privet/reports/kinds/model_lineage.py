"""The ``model-lineage`` kind: what one model version learned from and what happened to
it since: its training data, job, privacy guarantee, governance events, erasures that
affected it, the predictions it served and the human reviews of its decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session, func, select

from privet.compliance import service as compliance
from privet.datasets.tables import Dataset, DatasetVersion
from privet.inference.tables import Prediction
from privet.jobs.tables import TrainingJob
from privet.kit.errors import NotFoundError
from privet.ledger.queries import AuditEventPublic
from privet.models.tables import Model, ModelVersion, ModelVersionFlag
from privet.monitoring.service import review_summary
from privet.reports import charts
from privet.reports.evidence import Evidence, refs
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.model import Chart, Report, Table, new_report

Served = Sequence[tuple[str, str, int]]
"""(purpose, label, count) of the predictions a version served."""

DATA_COLUMNS = [
    ("dataset", "Dataset"),
    ("version_id", "Version id"),
    ("number", "No."),
    ("digest", "Content digest"),
    ("rows", "Rows"),
    ("purposes", "Purposes"),
    ("legal_basis", "Legal basis"),
    ("data_categories", "Categories"),
    ("retention_days", "Retention (days)"),
    ("state", "State now"),
    ("shredded", "Shredded"),
    ("evidence", "Log events"),
]
PARAMETER_COLUMNS = [("parameter", "Parameter"), ("value", "Value")]
HISTORY_COLUMNS = [
    ("event", "Event"),
    ("time", "Time"),
    ("actor", "By"),
    ("detail", "Detail"),
    ("evidence", "Log event"),
]
ERASURE_COLUMNS = [
    ("request", "Request"),
    ("dataset_versions", "Erased dataset versions"),
    ("remedy", "Remedy"),
    ("justification", "Why"),
    ("retrain_job", "Retraining job"),
    ("at", "Flagged at"),
]


def _facts(
    version: ModelVersion, name: str, served_total: int, flagged: bool
) -> list[tuple[str, Any]]:
    privacy = version.privacy or {}
    return [
        ("Model", name),
        ("Version", version.number),
        ("Version id", version.id),
        ("Project", version.project_id),
        ("State", version.state),
        ("Base model", f"{version.base_model} (sha256 {version.base_model_sha256[:16]}…)"),
        ("Weights sha256", version.weights_sha256),
        ("Trained with differential privacy", version.private),
        ("ε (epsilon)", privacy.get("epsilon")),
        ("δ (delta)", privacy.get("delta")),
        ("Policy version at training", version.lineage.get("policy_version")),
        ("Code version", version.lineage.get("code_version")),
        ("Predictions served", served_total),
        ("Affected by erasure requests", flagged),
    ]


def _data_rows(session: Session, ev: Evidence, version: ModelVersion) -> list[dict[str, Any]]:
    """The dataset versions it was trained on, as they were declared and as they are now."""
    rows = []
    for ref in version.dataset_versions:
        dv = session.get(DatasetVersion, ref["id"])
        ds = session.get(Dataset, dv.dataset_id) if dv else None
        d = dv.declarations if dv else {}
        dvev = ev.events(
            object_id=ref["id"], types=("dataset.version.", "dataset.subjects."), limit=50
        )
        rows.append(
            {
                "dataset": ds.name if ds else ref.get("dataset_id"),
                "version_id": ref["id"],
                "number": dv.number if dv else None,
                "digest": ref.get("digest") or (dv and dv.digest),
                "rows": dv.row_count if dv else ref.get("rows"),
                "purposes": d.get("purposes"),
                "legal_basis": d.get("legal_basis"),
                "data_categories": d.get("data_categories"),
                "retention_days": d.get("retention_days"),
                "state": dv.state if dv else "unknown",
                "shredded": f"{dv.shred_reason} at {dv.shredded_at:%Y-%m-%d %H:%M}"
                if dv and dv.shredded_at
                else "",
                "evidence": refs(dvev),
            }
        )
    return rows


def _job_rows(session: Session, version: ModelVersion) -> list[dict[str, Any]]:
    job = session.get(TrainingJob, version.job_id)
    rows = [{"parameter": k, "value": v} for k, v in sorted((job.params if job else {}).items())]
    if job:
        rows[:0] = [
            {"parameter": "job id", "value": job.id},
            {"parameter": "submitted by", "value": job.submitted_by},
            {"parameter": "state", "value": job.state},
            {"parameter": "started", "value": job.started_at},
            {"parameter": "finished", "value": job.finished_at},
        ]
    return rows


def _history_rows(events: list[AuditEventPublic]) -> list[dict[str, Any]]:
    return [
        {
            "event": e.event["type"],
            "time": e.event["time"],
            "actor": e.event["actor"],
            "detail": e.event["details"].get("from_state") or "",
            "evidence": f"#{e.index}",
        }
        for e in events
    ]


def _erasure_rows(flags: Sequence[ModelVersionFlag]) -> list[dict[str, Any]]:
    return [
        {
            "request": f.request_id,
            "dataset_versions": f.dataset_version_ids,
            "remedy": f.remedy,
            "justification": f.justification,
            "retrain_job": f.retrain_job_id or "",
            "at": f.created_at,
        }
        for f in flags
    ]


def lineage_review_table(session: Session, model_version_id: str) -> Table:
    """Human reviews of a version's decisions."""
    s = review_summary(session, model_version_id)
    return Table(
        "reviews",
        "Human reviews of this version's decisions",
        [("kind", "Reviews"), ("count", "Count"), ("predictions", "Predictions")],
        [
            {"kind": "sent to review (pending_review)", "count": s["pending_review"]},
            {"kind": "referred (refer)", "count": s["refer"]},
            {"kind": "confirmed", "count": s["confirmed"]},
            {
                "kind": "overturned",
                "count": s["overturned"],
                "predictions": s["overturned_predictions"],
            },
        ],
    )


def _tables(
    session: Session,
    ev: Evidence,
    version: ModelVersion,
    flags: Sequence[ModelVersionFlag],
    served: Served,
) -> list[Table]:
    vev = ev.events(object_id=version.id, types=("model_version.",), limit=200)
    jev = ev.events(object_id=version.job_id, types=("training_job.", "privacy_budget."), limit=200)
    privacy_rows = [
        {"parameter": k, "value": v} for k, v in sorted((version.privacy or {}).items())
    ]
    return [
        Table(
            "training_data",
            "Training data (dataset versions)",
            DATA_COLUMNS,
            _data_rows(session, ev, version),
        ),
        Table("training_job", "Training job", PARAMETER_COLUMNS, _job_rows(session, version)),
        Table(
            "privacy",
            "Privacy guarantee",
            PARAMETER_COLUMNS,
            privacy_rows,
            empty="Not trained with differential privacy.",
        ),
        Table(
            "history",
            "Registration, approvals and budget",
            HISTORY_COLUMNS,
            _history_rows(vev + jev),
        ),
        Table(
            "erasures",
            "Erasure requests that affected this version",
            ERASURE_COLUMNS,
            _erasure_rows(flags),
            empty="No erasure request has affected this model version.",
        ),
        Table(
            "predictions",
            "Predictions served",
            [("purpose", "Purpose"), ("label", "Outcome"), ("count", "Count")],
            [{"purpose": p, "label": lab, "count": int(n)} for p, lab, n in sorted(served)],
        ),
        lineage_review_table(session, version.id),
    ]


def _served_chart(served: Served) -> Chart:
    labels = sorted({f"{p} / {lab}" for p, lab, _n in served})
    counts = {f"{p} / {lab}": int(n) for p, lab, n in served}
    return Chart(
        "Predictions by purpose and outcome",
        charts.bar_chart(
            "Predictions by purpose and outcome",
            labels,
            [("predictions", [counts[x] for x in labels])],
        ),
    )


def build_model_lineage(
    session: Session, runtime: ReportRuntime, *, actor: str, model_version_id: str
) -> Report:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise NotFoundError(f"model version {model_version_id!r} does not exist")
    model = session.get(Model, version.model_id)
    ev = Evidence(session)
    name = model.name if model else version.model_id
    report = new_report(
        "model-lineage",
        f"Model lineage: {name} v{version.number}",
        actor=actor,
        params={"model_version": version.id, "project": version.project_id},
    )
    flags = compliance.flags_for(session, model_version_id=version.id)
    served: Served = session.exec(
        select(Prediction.purpose, Prediction.label, func.count())
        .where(Prediction.model_version_id == version.id)
        .group_by(Prediction.purpose, Prediction.label)
    ).all()
    report.facts = _facts(version, name, sum(int(n) for _p, _l, n in served), len(flags) > 0)
    report.tables = _tables(session, ev, version, flags, served)
    if flags:
        ev.events(object_id=version.id, types=("model_version.erasure_flagged",), limit=50)
        report.notes.append(
            "This model version was trained on records that were later erased at a data "
            "subject's request. "
            + " ".join(f"Remedy: {f.remedy.replace('_', ' ')} — {f.justification}." for f in flags)
        )
    if served:
        report.charts.append(_served_chart(served))
    report.data = {
        "model_version_id": version.id,
        "flagged": bool(flags),
        "remedies": [f.remedy for f in flags],
    }
    report.ledger = ev.to_json()
    return report


def _build(
    session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    return build_model_lineage(
        session, runtime, actor=actor, model_version_id=params["model_version"]
    )


KIND = ReportKind(
    name="model-lineage",
    description="One model version's training data, job, privacy guarantee, governance "
    "events, erasures, predictions served and human reviews.",
    parameters=("model_version",),
    required=("model_version",),
    builder=_build,
)
