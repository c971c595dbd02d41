"""The body of an access request's answer (GDPR Art. 15): the datasets holding records
about the subject, the models trained on them, the automated decisions about them and
the recipients, each row citing its ledger events."""

from __future__ import annotations

from typing import Any

from privet.compliance import discovery
from privet.reports.evidence import Evidence, refs
from privet.reports.model import Report, Table

DATASET_COLUMNS = [
    ("project", "Project"),
    ("dataset", "Dataset"),
    ("version", "Version"),
    ("version_id", "Version id"),
    ("records", "Records"),
    ("data_categories", "Categories of data"),
    ("purposes", "Purposes"),
    ("legal_basis", "Legal basis"),
    ("retention_until", "Kept until"),
    ("evidence", "Log events"),
]
MODEL_COLUMNS = [
    ("model", "Model"),
    ("version", "Version"),
    ("version_id", "Version id"),
    ("state", "State"),
    ("private", "Differential privacy"),
    ("epsilon", "ε"),
    ("delta", "δ"),
    ("purposes", "Purposes"),
    ("evidence", "Log events"),
]
PREDICTION_COLUMNS = [
    ("prediction", "Decision id"),
    ("time", "Time"),
    ("model", "Model"),
    ("version", "Version"),
    ("model_version_id", "Model version id"),
    ("purpose", "Purpose"),
    ("outcome", "Outcome"),
    ("confidence", "Confidence"),
    ("human_reviewed", "Reviewed by a person"),
    ("reviews", "Reviews"),
    ("evidence", "Log events"),
]


def _dataset_rows(ev: Evidence, f: discovery.Findings) -> list[dict[str, Any]]:
    rows = []
    for h in f.datasets:
        dev = ev.events(object_id=h.version_id, types=("dataset.version.created",), limit=5)
        d = h.declarations
        rows.append(
            {
                "project": h.project_name,
                "dataset": h.dataset_name,
                "version": h.version_number,
                "version_id": h.version_id,
                "records": h.rows,
                "data_categories": d.get("data_categories"),
                "purposes": d.get("purposes"),
                "legal_basis": d.get("legal_basis"),
                "retention_until": h.retention_until,
                "evidence": refs(dev),
            }
        )
    return rows


def _model_rows(ev: Evidence, f: discovery.Findings) -> list[dict[str, Any]]:
    rows = []
    for m in f.models:
        mev = ev.events(object_id=m.version_id, types=("model_version.registered",), limit=5)
        rows.append(
            {
                "model": m.model_name,
                "version": m.number,
                "version_id": m.version_id,
                "state": m.state,
                "private": m.private,
                "epsilon": m.epsilon,
                "delta": m.delta,
                "purposes": m.purposes,
                "evidence": refs(mev),
            }
        )
    return rows


def _prediction_rows(ev: Evidence, f: discovery.Findings) -> list[dict[str, Any]]:
    rows = []
    for pr in f.predictions:
        pev = ev.events(object_id=pr.prediction_id, types=("prediction.",), limit=10)
        rows.append(
            {
                "prediction": pr.prediction_id,
                "time": pr.created_at,
                "model": pr.model_name,
                "version": pr.model_version,
                "model_version_id": pr.model_version_id,
                "purpose": pr.purpose,
                "outcome": pr.label,
                "confidence": f"{pr.score_ppm / 10_000:.1f}%",
                "human_reviewed": pr.human_reviewed,
                "reviews": [f"{r['kind']}: {r['decision']}" for r in pr.reviews],
                "evidence": refs(pev),
            }
        )
    return rows


def access_tables(report: Report, ev: Evidence, f: discovery.Findings) -> None:
    """Add the findings about the subject to ``report``: tables, counts, rights, ids."""
    data_rows = _dataset_rows(ev, f)
    model_rows = _model_rows(ev, f)
    pred_rows = _prediction_rows(ev, f)
    recipients = [
        {"project": pid, "recipients": r or ["none beyond the controller"]}
        for pid, r in f.recipients.items()
    ]
    report.tables += [
        Table(
            "datasets",
            "Datasets that hold records about you",
            DATASET_COLUMNS,
            data_rows,
            empty="No dataset holds records about you.",
        ),
        Table(
            "models",
            "Models trained on those records",
            MODEL_COLUMNS,
            model_rows,
            empty="No model was trained on records about you.",
        ),
        Table(
            "predictions",
            "Automated decisions about you",
            PREDICTION_COLUMNS,
            pred_rows,
            empty="No automated decision was recorded about you.",
        ),
        Table(
            "recipients",
            "Recipients",
            [("project", "Project"), ("recipients", "Recipients")],
            recipients,
        ),
    ]
    report.facts += [
        ("Dataset versions holding your records", len(data_rows)),
        ("Models trained on them", len(model_rows)),
        ("Automated decisions about you", len(pred_rows)),
    ]
    report.notes.append(
        "You may ask for these records to be corrected or erased, object to their "
        "processing, and ask for a person to review any automated decision listed here."
    )
    report.data.update(
        {
            "dataset_versions": [h.version_id for h in f.datasets],
            "model_versions": [m.version_id for m in f.models],
            "predictions": [p.prediction_id for p in f.predictions],
        }
    )
