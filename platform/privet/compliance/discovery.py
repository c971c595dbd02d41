"""Discovery: where a data subject's data is, across every project.

Active dataset versions holding the subject's rows (decrypted in memory and scanned),
the model versions trained on them, and the predictions recorded about the subject (by
pseudonym). An access request reports it, an objection records it; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from privet.auth.tables import Project
from privet.compliance.service import get_project_settings, subject_pseudonym
from privet.crypto.context import ServiceRuntime
from privet.datasets.rows import iter_version_rows, version_keys
from privet.datasets.tables import Dataset, DatasetVersion, VersionState
from privet.datasets.usage import usages_of
from privet.inference.tables import Prediction, PredictionReview
from privet.models.tables import Model, ModelVersion


@dataclass
class DatasetHit:
    project_id: str
    project_name: str
    dataset_id: str
    dataset_name: str
    version_id: str
    version_number: int
    digest: str
    rows: int
    declarations: dict[str, Any]
    retention_until: datetime


@dataclass
class ModelHit:
    project_id: str
    model_id: str
    model_name: str
    version_id: str
    number: int
    state: str
    private: bool
    epsilon: float | None
    delta: float | None
    dataset_version_ids: list[str]
    purposes: list[str]


@dataclass
class PredictionHit:
    project_id: str
    prediction_id: str
    model_version_id: str
    model_name: str
    model_version: int
    purpose: str
    label: str
    score_ppm: int
    created_at: datetime
    human_reviewed: bool
    reviews: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Findings:
    subject_digest: str
    datasets: list[DatasetHit]
    models: list[ModelHit]
    predictions: list[PredictionHit]
    recipients: dict[str, list[str]]

    def summary(self) -> dict[str, Any]:
        """Ids and counts only: what the request log keeps."""
        return {
            "dataset_versions": sorted({d.version_id for d in self.datasets}),
            "model_versions": sorted({m.version_id for m in self.models}),
            "predictions": len(self.predictions),
            "projects": sorted(
                {d.project_id for d in self.datasets}
                | {m.project_id for m in self.models}
                | {p.project_id for p in self.predictions}
            ),
        }


def _project_names(session: Session) -> dict[str, str]:
    return {p.id: p.name for p in session.exec(select(Project)).all()}


def discover(session: Session, *, runtime: ServiceRuntime, subject_id: str) -> Findings:
    """Every active dataset version holding the subject's rows (decrypted in memory and
    scanned), the model versions trained on those versions, and the predictions recorded
    about the subject, across every project."""
    pseudonym = subject_pseudonym(runtime, subject_id)
    names = _project_names(session)
    hits: list[DatasetHit] = []
    versions = session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.state == VersionState.active.value)
        .order_by(
            col(DatasetVersion.project_id),
            col(DatasetVersion.dataset_id),
            col(DatasetVersion.number),
        )
    ).all()
    datasets = {d.id: d for d in session.exec(select(Dataset)).all()}
    scanned = [v for v in versions if (v.declarations or {}).get("subject_id_column")]
    keys = version_keys(session, scanned)  # together: no round trip per dataset
    for version in scanned:
        count = 0
        for _text, _label, subject in iter_version_rows(
            session,
            provider=runtime.key_provider,
            store=runtime.blobs,
            version=version,
            keys=keys,
        ):
            if subject == subject_id:
                count += 1
        if count:
            ds = datasets.get(version.dataset_id)
            hits.append(
                DatasetHit(
                    project_id=version.project_id,
                    project_name=names.get(version.project_id, ""),
                    dataset_id=version.dataset_id,
                    dataset_name=ds.name if ds else "",
                    version_id=version.id,
                    version_number=version.number,
                    digest=version.digest,
                    rows=count,
                    declarations=dict(version.declarations),
                    retention_until=version.retention_until,
                )
            )
    usages = usages_of(session, dataset_version_ids=[h.version_id for h in hits])
    model_ids = sorted({u.used_by_id for u in usages if u.used_by_kind == "model_version"})
    models = _model_hits(session, model_ids)
    predictions = _prediction_hits(session, pseudonym)
    projects = {h.project_id for h in hits} | {p.project_id for p in predictions}
    recipients = {
        pid: list(get_project_settings(session, project_id=pid).recipients)
        for pid in sorted(projects)
    }
    return Findings(pseudonym, hits, models, predictions, recipients)


def _model_hits(session: Session, version_ids: Sequence[str]) -> list[ModelHit]:
    if not version_ids:
        return []
    rows = session.exec(
        select(ModelVersion, Model)
        .join(Model, col(Model.id) == col(ModelVersion.model_id))
        .where(col(ModelVersion.id).in_(list(version_ids)))
        .order_by(col(Model.name), col(ModelVersion.number))
    ).all()
    out = []
    for version, model in rows:
        privacy = version.privacy or {}
        out.append(
            ModelHit(
                project_id=version.project_id,
                model_id=model.id,
                model_name=model.name,
                version_id=version.id,
                number=version.number,
                state=version.state,
                private=version.private,
                epsilon=privacy.get("epsilon"),
                delta=privacy.get("delta"),
                dataset_version_ids=[d["id"] for d in version.dataset_versions],
                purposes=list(version.purposes),
            )
        )
    return out


def _prediction_hits(session: Session, pseudonym: str) -> list[PredictionHit]:
    rows = session.exec(
        select(Prediction)
        .where(Prediction.subject_digest == pseudonym)
        .order_by(col(Prediction.created_at), col(Prediction.id))
    ).all()
    if not rows:
        return []
    model_names = {m.id: m.name for m in session.exec(select(Model)).all()}
    reviews: dict[str, list[dict[str, Any]]] = {}
    for r in session.exec(
        select(PredictionReview)
        .where(col(PredictionReview.prediction_id).in_([p.id for p in rows]))
        .order_by(col(PredictionReview.created_at))
    ).all():
        reviews.setdefault(r.prediction_id, []).append(
            {
                "kind": r.kind,
                "decision": r.decision,
                "label": r.label,
                "at": r.created_at.isoformat(),
            }
        )
    return [
        PredictionHit(
            project_id=p.project_id,
            prediction_id=p.id,
            model_version_id=p.model_version_id,
            model_name=model_names.get(p.model_id, ""),
            model_version=p.version_number,
            purpose=p.purpose,
            label=p.label,
            score_ppm=p.score_ppm,
            created_at=p.created_at,
            human_reviewed=p.human_reviewed,
            reviews=reviews.get(p.id, []),
        )
        for p in rows
    ]
