"""Drift judgement: a window's live aggregate scored against the version's reference,
with an alert for each feature over its threshold.

Called by ``hub.Monitor.flush`` after it writes a window's aggregates, and read by the
monitoring view (``service.monitoring_view``) for the thresholds it shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from privet.kit.errors import NotFoundError
from privet.models.tables import ModelVersion
from privet.monitoring.alerts import raise_alert
from privet.monitoring.metrics import Monitored
from privet.monitoring.settings import MonitoringSettings
from privet.monitoring.stats import Agg, drift_scores
from privet.monitoring.tables import REFERENCE_READY, MonitoringAggregate, MonitoringReference

DRIFT_FEATURES: dict[str, tuple[str, str]] = {
    "label_js": ("js", "js_threshold"),
    "confidence_psi": ("psi", "psi_threshold"),
    "length_psi": ("psi", "psi_threshold"),
    "embedding_shift": ("shift", "embedding_threshold"),
}


def get_version(session: Session, version_id: str) -> ModelVersion:
    row = session.get(ModelVersion, version_id)
    if row is None:
        raise NotFoundError(f"model version {version_id!r} does not exist")
    return row


def thresholds(cfg: MonitoringSettings) -> dict[str, float]:
    return {f: float(getattr(cfg, attr)) for f, (_m, attr) in DRIFT_FEATURES.items()}


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


def judge_drift(
    session: Session, *, monitor: Monitored, model_version_id: str, window: datetime
) -> dict[str, float | None]:
    """Score one window against the reference; alert on features over their threshold."""
    cfg = monitor.config
    version = get_version(session, model_version_id)
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
