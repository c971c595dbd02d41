"""Monitoring services: references, drift judgement, outcomes and live quality, alerts,
automatic suspension and resumption, the review queue, and the monitoring view.

Everything reads and writes ids, labels, counts and model outputs; no function here
takes or returns an input text except ``build_reference`` (and
``reference.compute_version_reference``), which classify validation texts in memory and
keep only their aggregates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from privet import ledger
from privet.inference.tables import Prediction, PredictionReview
from privet.kit.errors import ConflictError, InvalidInputError, NotFoundError
from privet.kit.ids import new_id, utcnow
from privet.models import service as models_service
from privet.models.tables import Model, ModelVersion, ModelVersionState
from privet.monitoring.hub import Monitor, window_start
from privet.monitoring.reference import (
    ComputedReference,
    classify_aggregates,
    reference_status,
    store_reference,
)
from privet.monitoring.settings import MonitoringSettings
from privet.monitoring.stats import Agg, drift_scores, quality
from privet.monitoring.tables import (
    ALERT_ID_PREFIX,
    PENDING_REVIEW,
    REFER,
    REFERENCE_READY,
    MonitoringAggregate,
    MonitoringAlert,
    MonitoringReference,
    OutcomePublic,
    PredictionDecision,
    PredictionOutcome,
    QueueItem,
    ReviewQueue,
)

SUSPENDED = "suspended"
PPM = 1_000_000

DRIFT_FEATURES: dict[str, tuple[str, str]] = {
    "label_js": ("js", "js_threshold"),
    "confidence_psi": ("psi", "psi_threshold"),
    "length_psi": ("psi", "psi_threshold"),
    "embedding_shift": ("shift", "embedding_threshold"),
}


def ppm(x: float) -> int:
    return round(float(x) * PPM)


# --- references ----------------------------------------------------------------------------


def get_reference(
    session: Session, version: ModelVersion
) -> tuple[Agg | None, dict[str, Any], str]:
    """(aggregate, quality at approval, source) of a version's validation-time reference.

    A stored, ready reference (built at approval, or by ``build_reference``) first;
    otherwise what the evaluation at training left in the version's metrics: the
    predicted-label distribution (column sums of the confusion matrix), accuracy and
    macro-F1 (then only label drift is scored)."""
    row = session.get(MonitoringReference, version.id)
    if row is not None and row.status != REFERENCE_READY:
        row = None  # pending or failed: not a reference yet
    metrics = version.metrics or {}
    approval = {
        k: metrics.get(k)
        for k in ("accuracy", "macro_f1", "examples")
        if metrics.get(k) is not None
    }
    if row is not None:
        merged = {**approval, **{k: v for k, v in row.quality.items() if v is not None}}
        return Agg.from_json(row.count, row.data), merged, row.source
    matrix = metrics.get("confusion_matrix")
    if matrix:
        agg = Agg()
        names = list(version.label_names)
        for j, name in enumerate(names):
            agg.labels[name] = int(sum(r[j] for r in matrix if j < len(r)))
        agg.count = sum(agg.labels.values())
        return agg, approval, "evaluation"
    return None, approval, "none"


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
    from privet.monitoring.hub import get_monitoring_settings_cached

    cfg = get_monitoring_settings_cached()
    classifier = service.served(session, info).classifier
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
        project_id=info.project_id,
        computed=ComputedReference(
            agg=agg, quality=q, source=source, meta={"rows_used": agg.count}
        ),
        actor=actor,
        trigger="manual",
    )


# --- windows and drift ------------------------------------------------------------------------


def window_aggregates(
    session: Session, version_id: str, *, since: datetime | None = None
) -> dict[datetime, Agg]:
    query = select(
        MonitoringAggregate.window_start, MonitoringAggregate.count, MonitoringAggregate.data
    ).where(col(MonitoringAggregate.model_version_id) == version_id)
    if since is not None:
        query = query.where(col(MonitoringAggregate.window_start) >= since)
    out: dict[datetime, Agg] = {}
    for start, count, data in session.exec(query).all():
        out.setdefault(start, Agg()).merge(Agg.from_json(count, data))
    return out


def _version(session: Session, version_id: str) -> ModelVersion:
    row = session.get(ModelVersion, version_id)
    if row is None:
        raise NotFoundError(f"model version {version_id!r} does not exist")
    return row


def thresholds(cfg: MonitoringSettings) -> dict[str, float]:
    return {f: float(getattr(cfg, attr)) for f, (_m, attr) in DRIFT_FEATURES.items()}


def judge_drift(
    session: Session, *, monitor: Monitor, model_version_id: str, window: datetime
) -> dict[str, float | None]:
    """Score one window against the reference; alert on features over their threshold."""
    cfg = monitor.config
    version = _version(session, model_version_id)
    reference, approval, _source = get_reference(session, version)
    for metric in ("accuracy", "macro_f1", "ece"):
        if isinstance(approval.get(metric), int | float):
            monitor.metrics.reference_quality.labels(version.id, metric).set(approval[metric])
    if reference is None:
        return {}
    live = window_aggregates(session, model_version_id, since=window).get(window, Agg())
    scores = drift_scores(reference, live)
    limits = thresholds(cfg)
    for feature, score in scores.items():
        if score is None:
            continue
        monitor.metrics.drift.labels(model_version_id, feature).set(score)
        monitor.metrics.threshold.labels(feature).set(limits[feature])
        if live.count >= cfg.min_window_count and score > limits[feature]:
            raise_alert(
                session,
                monitor=monitor,
                version=version,
                window=window,
                feature=feature,
                metric=DRIFT_FEATURES[feature][0],
                value=score,
                threshold=limits[feature],
                extra={"predictions": live.count},
            )
    return scores


def raise_alert(
    session: Session,
    *,
    monitor: Monitor,
    version: ModelVersion,
    window: datetime,
    feature: str,
    metric: str,
    value: float,
    threshold: float,
    action: str = "alert",
    extra: dict[str, Any] | None = None,
) -> MonitoringAlert | None:
    """Record a crossed threshold once per (version, window, feature): a row and a
    ``monitoring.threshold_crossed`` ledger event."""
    alert = MonitoringAlert(
        id=new_id(ALERT_ID_PREFIX),
        model_version_id=version.id,
        window_start=window,
        feature=feature,
        metric=metric,
        value=float(value),
        threshold=float(threshold),
        action=action,
        created_at=utcnow(),
    )
    # Once per (version, window, feature), also when replicas judge the same window at
    # once: the insert that loses the race does nothing, and emits nothing.
    dialect = session.get_bind().dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = session.execute(
        make_insert(MonitoringAlert.__table__)  # type: ignore[attr-defined]
        .values(**alert.model_dump())
        .on_conflict_do_nothing(index_elements=["model_version_id", "window_start", "feature"])
        .returning(MonitoringAlert.__table__.c.id)  # type: ignore[attr-defined]
    )
    if result.first() is None:
        return None
    ledger.emit(
        session,
        type="monitoring.threshold_crossed",
        actor=None,
        project=version.project_id,
        objects={"model_version": version.id, "model": version.model_id, "alert": alert.id},
        details={
            "feature": feature,
            "metric": metric,
            "value_ppm": ppm(value),
            "threshold_ppm": ppm(threshold),
            "window_start": window.isoformat(),
            "action": action,
            **(extra or {}),
        },
    )
    monitor.metrics.alerts.labels(version.id, feature).inc()
    return alert


# --- outcomes and live quality ---------------------------------------------------------------


def record_outcome(
    session: Session, *, monitor: Monitor, prediction: Prediction, label: str, actor: str
) -> OutcomePublic:
    """Record the true label of a prediction (once) and judge its window's quality."""
    version = _version(session, prediction.model_version_id)
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


def outcome_rows(
    session: Session, version: ModelVersion, *, since: datetime | None = None
) -> list[tuple[str, str, float, datetime, str]]:
    """(true, predicted, confidence, predicted at, source) of a version's predictions with
    a known truth: recorded outcomes, and human reviews where no outcome was recorded (a
    confirmation says the prediction was right; an overturn gives the right label, or the
    other one of two)."""
    q = sa_select(
        col(PredictionOutcome.label),
        col(PredictionOutcome.predicted_label),
        col(PredictionOutcome.score_ppm),
        col(PredictionOutcome.predicted_at),
        col(PredictionOutcome.prediction_id),
    ).where(col(PredictionOutcome.model_version_id) == version.id)
    if since is not None:
        q = q.where(col(PredictionOutcome.predicted_at) >= since)
    out: list[tuple[str, str, float, datetime, str]] = []
    seen: set[str] = set()
    for t, p, s, at, pid in session.execute(q).all():
        out.append((t, p, s / PPM, at, "outcome"))
        seen.add(pid)
    rq = (
        sa_select(
            col(PredictionReview.prediction_id),
            col(PredictionReview.decision),
            col(PredictionReview.label),
            col(Prediction.label),
            col(Prediction.score_ppm),
            col(Prediction.created_at),
        )
        .join(Prediction, col(Prediction.id) == col(PredictionReview.prediction_id))
        .where(
            col(Prediction.model_version_id) == version.id,
            col(PredictionReview.kind) == "review",
        )
        .order_by(col(PredictionReview.created_at))
    )
    if since is not None:
        rq = rq.where(col(Prediction.created_at) >= since)
    latest: dict[str, tuple[str, str, float, datetime]] = {}
    names = list(version.label_names)
    for pid, decision, new_label, predicted, score, at in session.execute(rq).all():
        if pid in seen:
            continue
        if decision == "confirmed":
            truth: str | None = predicted
        elif decision == "overturned":
            others = [n for n in names if n != predicted]
            truth = new_label or (others[0] if len(others) == 1 else None)
        else:
            truth = None
        if truth is None:
            latest.pop(pid, None)
            continue
        latest[pid] = (truth, predicted, score / PPM, at)  # the latest review wins
    out.extend((t, p, c, at, "review") for t, p, c, at in latest.values())
    return out


def accuracy_floor(cfg: MonitoringSettings, approval: dict[str, Any]) -> float | None:
    if cfg.accuracy_floor is not None:
        return cfg.accuracy_floor
    acc = approval.get("accuracy")
    return max(0.0, float(acc) - cfg.accuracy_drop) if acc is not None else None


def below(q: dict[str, Any], floor: float | None, min_outcomes: int) -> bool:
    """Whether a window's quality is judged and its accuracy is under the floor."""
    acc, n = q.get("accuracy"), q.get("outcomes") or 0
    return floor is not None and acc is not None and n >= min_outcomes and acc < floor


def judge_quality(
    session: Session, *, monitor: Monitor, version: ModelVersion, window: datetime
) -> dict[str, Any]:
    cfg = monitor.config
    end = window + timedelta(seconds=cfg.window_s)
    rows = [
        (t, p, c) for t, p, c, at, _s in outcome_rows(session, version, since=window) if at < end
    ]
    q = quality(rows, version.label_names)
    for metric in ("accuracy", "macro_f1", "ece"):
        if q.get(metric) is not None:
            monitor.metrics.quality.labels(version.id, metric).set(float(q[metric]))  # type: ignore[arg-type]
    _ref, approval, _src = get_reference(session, version)
    floor = accuracy_floor(cfg, approval)
    if below(q, floor, cfg.min_outcomes) and floor is not None:
        acc = float(q["accuracy"])  # type: ignore[arg-type]
        suspend = cfg.auto_suspend and version.state == ModelVersionState.approved.value
        alert = raise_alert(
            session,
            monitor=monitor,
            version=version,
            window=window,
            feature="accuracy",
            metric="floor",
            value=float(acc),
            threshold=floor,
            action="suspend" if suspend else "alert",
            extra={"outcomes": q["outcomes"]},
        )
        if alert is not None and suspend:
            suspend_version(session, monitor=monitor, version=version, alert=alert)
    return q


def suspend_version(
    session: Session, *, monitor: Monitor, version: ModelVersion, alert: MonitoringAlert
) -> None:
    """approved → suspended: it stops serving (every replica within the state TTL)."""
    result = session.execute(
        update(ModelVersion.__table__)  # type: ignore[attr-defined]
        .where(
            and_(
                ModelVersion.__table__.c.id == version.id,  # type: ignore[attr-defined]
                ModelVersion.__table__.c.state == ModelVersionState.approved.value,  # type: ignore[attr-defined]
            )
        )
        .values(state=SUSPENDED)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return
    session.expire(version)
    ledger.emit(
        session,
        type="model_version.suspended",
        actor=None,
        project=version.project_id,
        objects={"model_version": version.id, "model": version.model_id, "alert": alert.id},
        details={
            "from_state": ModelVersionState.approved.value,
            "reason": "live-quality-below-floor",
            "value_ppm": ppm(alert.value),
            "threshold_ppm": ppm(alert.threshold),
            "window_start": alert.window_start.isoformat(),
        },
    )
    monitor.metrics.suspensions.labels(version.id).inc()


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


def review_queue(
    session: Session, *, project_id: str, status: str = "open", limit: int = 200
) -> ReviewQueue:
    """Predictions the decision rules kept from being final, and how reviews closed them
    (a review of kind ``review`` closes an item; a contest does not)."""
    decisions = session.exec(
        select(PredictionDecision)
        .where(col(PredictionDecision.project_id) == project_id)
        .order_by(col(PredictionDecision.created_at))
    ).all()
    ids = [d.prediction_id for d in decisions]
    reviews: dict[str, PredictionReview] = {}
    for start in range(0, len(ids), 500):
        for review in session.exec(
            select(PredictionReview)
            .where(
                col(PredictionReview.prediction_id).in_(ids[start : start + 500]),
                col(PredictionReview.kind) == "review",
            )
            .order_by(col(PredictionReview.created_at))
        ).all():
            reviews[review.prediction_id] = review
    items: list[QueueItem] = []
    open_count = 0
    for d in decisions:
        r = reviews.get(d.prediction_id)
        if r is None:
            open_count += 1
        if (status == "open" and r is not None) or (status == "closed" and r is None):
            continue
        items.append(
            QueueItem(
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
        )
    return ReviewQueue(items=items[:limit], open=open_count)


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
    aggs = window_aggregates(session, version.id)
    by_window: dict[datetime, list[tuple[str, str, float]]] = defaultdict(list)
    for t, p, c, at, _s in outcome_rows(session, version):
        by_window[window_start(at, cfg.window_s)].append((t, p, c))
    starts = sorted(set(aggs) | set(by_window))[-windows:]
    limits = thresholds(cfg)
    floor = accuracy_floor(cfg, approval)
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
    alerts = session.exec(
        select(MonitoringAlert)
        .where(col(MonitoringAlert.model_version_id) == version.id)
        .order_by(col(MonitoringAlert.created_at))
    ).all()
    return {
        "model": model.name if model else version.model_id,
        "model_id": version.model_id,
        "model_version_id": version.id,
        "model_version": version.number,
        "project": version.project_id,
        "state": version.state,
        "labels": list(version.label_names),
        "window_s": cfg.window_s,
        "reference": {
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
        },
        "approval_quality": approval,
        "thresholds": {
            **limits,
            "accuracy_floor": floor,
            "min_window_count": cfg.min_window_count,
            "min_outcomes": cfg.min_outcomes,
            "auto_suspend": cfg.auto_suspend,
        },
        "windows": rows,
        "alerts": [
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
        ],
        "reviews": review_summary(session, version.id),
    }
