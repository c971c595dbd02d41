"""Live quality: outcomes (true labels recorded, or given by human reviews) scored per
window against an accuracy floor; a version under the floor is suspended automatically
(``auto_suspend``) or alerted on."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from privet import ledger
from privet.inference.tables import Prediction, PredictionReview
from privet.models.tables import ModelVersion, ModelVersionState
from privet.monitoring.alerts import PPM, ppm, raise_alert
from privet.monitoring.drift import get_reference
from privet.monitoring.metrics import Monitored
from privet.monitoring.settings import MonitoringSettings
from privet.monitoring.stats import quality
from privet.monitoring.tables import MonitoringAlert, PredictionOutcome

SUSPENDED = "suspended"


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
    session: Session, *, monitor: Monitored, version: ModelVersion, window: datetime
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
    session: Session, *, monitor: Monitored, version: ModelVersion, alert: MonitoringAlert
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
