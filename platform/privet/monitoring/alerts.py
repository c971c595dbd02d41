"""Alerts: a crossed threshold (drift or quality) is recorded once per version, window
and feature, as a row and a ``monitoring.threshold_crossed`` ledger event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from privet import ledger
from privet.kit.ids import new_id, utcnow
from privet.models.tables import ModelVersion
from privet.monitoring.metrics import Monitored
from privet.monitoring.tables import ALERT_ID_PREFIX, MonitoringAlert

PPM = 1_000_000


def ppm(x: float) -> int:
    return round(float(x) * PPM)


def raise_alert(
    session: Session,
    *,
    monitor: Monitored,
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
