"""Monitoring services, the calls the API, the CLI and the report make: build a reference,
record an outcome, resume a suspended version, the review queue, and the monitoring view.

Judging lives below: ``drift`` (windows against the reference), ``quality`` (outcomes
against the accuracy floor, automatic suspension), ``alerts`` (crossed thresholds).
Everything reads and writes ids, labels, counts and model outputs; no function here
takes or returns an input text except ``build_reference`` (and ``reference.read_inputs``
with ``reference.classify_inputs``), which classify validation texts in memory and keep
only their aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Exists, and_, exists, func, update
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from privet import ledger
from privet.inference.tables import Prediction, PredictionReview
from privet.kit.errors import ConflictError, InvalidInputError
from privet.kit.ids import utcnow
from privet.kit.paging import Keyset
from privet.models import service as models_service
from privet.models.tables import Model, ModelVersion, ModelVersionState
from privet.monitoring.alerts import PPM
from privet.monitoring.drift import get_reference, get_version, thresholds, window_aggregates
from privet.monitoring.metrics import Monitored
from privet.monitoring.quality import SUSPENDED, accuracy_floor, below, judge_quality, outcome_rows
from privet.monitoring.reference import (
    ComputedReference,
    classify_aggregates,
    reference_status,
    store_reference,
)
from privet.monitoring.schemas import OutcomePublic, QueueItem, ReviewQueue
from privet.monitoring.settings import MonitoringSettings, get_monitoring_settings
from privet.monitoring.stats import Agg, drift_scores, quality, window_start
from privet.monitoring.tables import (
    PENDING_REVIEW,
    REFER,
    MonitoringAlert,
    MonitoringReference,
    PredictionDecision,
    PredictionOutcome,
)

# --- references ----------------------------------------------------------------------------


def build_reference(
    session: Session,
    *,
    service: Any,
    info: Any,
    texts: Sequence[str],
    labels: Sequence[str] | None = None,
    actor: str | None = None,
    source: str = "validation",
    batch_size: int = 64,
) -> MonitoringReference:
    """Classify the given texts in memory and keep their aggregates (and, with labels,
    accuracy, macro-F1 and calibration error) as the version's reference.

    The platform builds a version's reference itself at approval, from its evaluation
    split (``privet.monitoring.reference``); this is the same for texts at hand."""
    cfg = get_monitoring_settings()
    classifier = service.served(info).classifier
    agg, q = classify_aggregates(
        classifier,
        label_names=info.label_names,
        texts=texts,
        labels=labels,
        cfg=cfg,
        batch_size=batch_size,
    )
    return store_reference(
        session,
        version_id=info.id,
        computed=ComputedReference(
            agg=agg, quality=q, source=source, meta={"rows_used": agg.count}
        ),
        actor=actor,
        trigger="manual",
    )


# --- outcomes and suspension ----------------------------------------------------------------


def record_outcome(
    session: Session, *, monitor: Monitored, prediction: Prediction, label: str, actor: str
) -> OutcomePublic:
    """Record the true label of a prediction (once) and judge its window's quality."""
    version = get_version(session, prediction.model_version_id)
    if label not in version.label_names:
        raise InvalidInputError(
            f"label {label!r} is not one of the model's labels {version.label_names}",
            field="label",
        )
    if session.get(PredictionOutcome, prediction.id) is not None:
        raise ConflictError(
            f"prediction {prediction.id} already has an outcome; outcomes are recorded once",
            prediction=prediction.id,
        )
    now = utcnow()
    row = PredictionOutcome(
        prediction_id=prediction.id,
        project_id=prediction.project_id,
        model_version_id=prediction.model_version_id,
        label=label,
        predicted_label=prediction.label,
        score_ppm=prediction.score_ppm,
        predicted_at=prediction.created_at,
        recorded_by=actor,
        recorded_at=now,
    )
    session.add(row)
    correct = label == prediction.label
    ledger.emit(
        session,
        type="prediction.outcome_recorded",
        actor=actor,
        project=prediction.project_id,
        objects={"prediction": prediction.id, "model_version": prediction.model_version_id},
        details={"label": label, "predicted_label": prediction.label, "correct": correct},
    )
    session.flush()
    monitor.metrics.outcomes.labels(version.id, str(correct).lower()).inc()
    judge_quality(
        session,
        monitor=monitor,
        version=version,
        window=window_start(prediction.created_at, monitor.config.window_s),
    )
    return OutcomePublic(
        prediction_id=prediction.id,
        model_version_id=prediction.model_version_id,
        label=label,
        predicted_label=prediction.label,
        correct=correct,
        recorded_at=now,
    )


def resume_version(
    session: Session, *, version: ModelVersion, actor_id: str, reason: str
) -> ModelVersion:
    """suspended → approved, by an approver (policy ``model_version.resume``); never while
    an erasure flag is open (rule ``model.erasure-flag-unresolved``)."""
    models_service.check_no_open_erasure_flag(session, version=version)
    result = session.execute(
        update(ModelVersion.__table__)  # type: ignore[attr-defined]
        .where(
            and_(
                ModelVersion.__table__.c.id == version.id,  # type: ignore[attr-defined]
                ModelVersion.__table__.c.state == SUSPENDED,  # type: ignore[attr-defined]
            )
        )
        .values(state=ModelVersionState.approved.value)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ConflictError(
            f"model version {version.id} is {version.state}; only a suspended version resumes",
            state=version.state,
        )
    ledger.emit(
        session,
        type="model_version.resumed",
        actor=actor_id,
        project=version.project_id,
        objects={"model_version": version.id, "model": version.model_id},
        details={"from_state": SUSPENDED, "reason_given": bool(reason)},
    )
    session.flush()
    session.refresh(version)
    return version


# --- the review queue ------------------------------------------------------------------------


QUEUE_ORDER = Keyset(
    columns=(col(PredictionDecision.created_at), col(PredictionDecision.prediction_id)),
    kinds=(datetime, str),
)
"""The review queue lists oldest first; (created_at, prediction_id) is the keyset."""


def _closed() -> Exists:
    """A review of kind ``review`` closes an item (a contest does not)."""
    return exists().where(
        col(PredictionReview.prediction_id) == col(PredictionDecision.prediction_id),
        col(PredictionReview.kind) == "review",
    )


def queue_statement(
    *, project_id: str, status: str = "open", after: str | None = None, limit: int = 200
) -> SelectOfScalar[PredictionDecision]:
    """The page query of ``review_queue`` (the plan tests EXPLAIN it)."""
    query = select(PredictionDecision).where(col(PredictionDecision.project_id) == project_id)
    if status == "open":
        query = query.where(~_closed())
    elif status == "closed":
        query = query.where(_closed())
    return QUEUE_ORDER.page(query, after=after, limit=limit)


def review_queue(
    session: Session,
    *,
    project_id: str,
    status: str = "open",
    after: str | None = None,
    limit: int = 200,
) -> ReviewQueue:
    """A page of the predictions the decision rules kept from being final, and how reviews
    closed them; ``open`` counts every open item of the project."""
    rows = session.exec(
        queue_statement(project_id=project_id, status=status, after=after, limit=limit)
    ).all()
    page = QUEUE_ORDER.split(rows, limit=limit, key=lambda d: (d.created_at, d.prediction_id))
    reviews: dict[str, PredictionReview] = {}
    for review in session.exec(
        select(PredictionReview)
        .where(
            col(PredictionReview.prediction_id).in_([d.prediction_id for d in page.items]),
            col(PredictionReview.kind) == "review",
        )
        .order_by(col(PredictionReview.created_at))
    ).all():
        reviews[review.prediction_id] = review
    open_count = session.exec(
        select(func.count())
        .select_from(PredictionDecision)
        .where(col(PredictionDecision.project_id) == project_id, ~_closed())
    ).one()
    items = [_queue_item(d, reviews.get(d.prediction_id)) for d in page.items]
    return ReviewQueue(items=items, open=open_count, next=page.next)


def _queue_item(d: PredictionDecision, r: PredictionReview | None) -> QueueItem:
    return QueueItem(
        prediction_id=d.prediction_id,
        model_version_id=d.model_version_id,
        status=d.status,
        rules=list(d.rules),
        label=d.label,
        score=d.score_ppm / PPM,
        purpose=d.purpose,
        created_at=d.created_at,
        review=r.decision if r else None,
        reviewed_label=r.label if r else None,
        reviewed_at=r.created_at if r else None,
    )


def review_summary(session: Session, version_id: str) -> dict[str, Any]:
    """Decision statuses and how reviews went, for one version."""
    counts = dict(
        session.exec(
            select(PredictionDecision.status, func.count())
            .where(col(PredictionDecision.model_version_id) == version_id)
            .group_by(col(PredictionDecision.status))
        ).all()
    )
    latest: dict[str, tuple[str, str | None]] = {}
    for pid, decision, label in session.exec(
        select(PredictionReview.prediction_id, PredictionReview.decision, PredictionReview.label)
        .join(Prediction, col(Prediction.id) == col(PredictionReview.prediction_id))
        .where(
            col(Prediction.model_version_id) == version_id,
            col(PredictionReview.kind) == "review",
        )
        .order_by(col(PredictionReview.created_at))
    ).all():
        latest[pid] = (decision, label)
    reviewed_queue = set(
        session.exec(
            select(PredictionDecision.prediction_id).where(
                col(PredictionDecision.model_version_id) == version_id
            )
        ).all()
    )
    overturned = sorted(p for p, (d, _l) in latest.items() if d == "overturned")
    return {
        "pending_review": int(counts.get(PENDING_REVIEW, 0)),
        "refer": int(counts.get(REFER, 0)),
        "open": len(reviewed_queue - set(latest)),
        "reviewed": len(latest),
        "confirmed": sum(1 for d, _l in latest.values() if d == "confirmed"),
        "overturned": len(overturned),
        "overturned_predictions": overturned[:200],
    }


# --- the view -------------------------------------------------------------------------------


def monitoring_view(
    session: Session, *, version: ModelVersion, cfg: MonitoringSettings, windows: int = 48
) -> dict[str, Any]:
    """Everything about one version's monitoring: reference, per-window drift and
    quality, alerts, reviews. Used by the API, the CLI and the report."""
    model = session.get(Model, version.model_id)
    reference, approval, source = get_reference(session, version)
    floor = accuracy_floor(cfg, approval)
    return {
        "model": model.name if model else version.model_id,
        "model_id": version.model_id,
        "model_version_id": version.id,
        "model_version": version.number,
        "project": version.project_id,
        "state": version.state,
        "labels": list(version.label_names),
        "window_s": cfg.window_s,
        "reference": _reference_view(session, version, reference, source),
        "approval_quality": approval,
        "thresholds": {
            **thresholds(cfg),
            "accuracy_floor": floor,
            "min_window_count": cfg.min_window_count,
            "min_outcomes": cfg.min_outcomes,
            "auto_suspend": cfg.auto_suspend,
        },
        "windows": _window_rows(session, version, reference, cfg=cfg, floor=floor, windows=windows),
        "alerts": _alert_rows(session, version),
        "reviews": review_summary(session, version.id),
    }


def _reference_view(
    session: Session, version: ModelVersion, reference: Agg | None, source: str
) -> dict[str, Any]:
    """The reference a version is judged against: where it came from, what it holds, and
    the state of the one built at approval."""
    return {
        "source": source,
        "examples": reference.count if reference is not None else 0,
        "labels": dict(reference.labels) if reference is not None else {},
        "features": sorted(
            f
            for f, s in (drift_scores(reference, reference) if reference else {}).items()
            if s is not None
        ),
        **reference_status(session, version).model_dump(
            mode="json",
            include={
                "status",
                "rows_available",
                "split",
                "dataset_version_id",
                "detail",
                "reason",
                "updated_at",
                "rebuild",
            },
        ),
    }


def _window_rows(
    session: Session,
    version: ModelVersion,
    reference: Agg | None,
    *,
    cfg: MonitoringSettings,
    floor: float | None,
    windows: int,
) -> list[dict[str, Any]]:
    """The last ``windows`` windows with predictions or outcomes: drift and quality each."""
    aggs = window_aggregates(session, version.id)
    by_window: dict[datetime, list[tuple[str, str, float]]] = defaultdict(list)
    for t, p, c, at, _s in outcome_rows(session, version):
        by_window[window_start(at, cfg.window_s)].append((t, p, c))
    starts = sorted(set(aggs) | set(by_window))[-windows:]
    limits = thresholds(cfg)
    rows = []
    for start in starts:
        live = aggs.get(start, Agg())
        scores = drift_scores(reference, live) if reference is not None else {}
        judged = live.count >= cfg.min_window_count
        q = quality(by_window.get(start, []), version.label_names)
        rows.append(
            {
                "window_start": start,
                "predictions": live.count,
                "labels": dict(live.labels),
                "drift": scores,
                "drifted": sorted(
                    f for f, s in scores.items() if judged and s is not None and s > limits[f]
                ),
                "quality": q,
                "below_floor": below(q, floor, cfg.min_outcomes),
            }
        )
    return rows


def _alert_rows(session: Session, version: ModelVersion) -> list[dict[str, Any]]:
    alerts = session.exec(
        select(MonitoringAlert)
        .where(col(MonitoringAlert.model_version_id) == version.id)
        .order_by(col(MonitoringAlert.created_at))
    ).all()
    return [
        {
            "id": a.id,
            "window_start": a.window_start,
            "feature": a.feature,
            "metric": a.metric,
            "value": a.value,
            "threshold": a.threshold,
            "action": a.action,
            "created_at": a.created_at,
        }
        for a in alerts
    ]
