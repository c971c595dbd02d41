"""Monitoring tables: decisions shaped by rules, outcomes, drift aggregates, references,
alerts. Nothing here holds an input text, a token or a subject id: ids, labels, counts,
histograms and moments of the model's own outputs only (see docs/MONITORING.md). Request
and response schemas: ``privet.monitoring.schemas``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

ALERT_ID_PREFIX = "mal"
AGGREGATE_ID_PREFIX = "mag"

FINAL = "final"
PENDING_REVIEW = "pending_review"
REFER = "refer"


class PredictionDecision(SQLModel, table=True):
    """A prediction whose decision rules made it non-final: it waits in the review queue
    until a human review (``prediction_reviews``, kind ``review``) closes it."""

    __tablename__ = "prediction_decisions"
    #: the pages of GET /v1/projects/{id}/review-queue, in queue order (migration 0017)
    __table_args__ = (
        Index(
            "ix_prediction_decisions_project_created", "project_id", "created_at", "prediction_id"
        ),
    )

    prediction_id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40)
    model_version_id: str = Field(max_length=40, index=True)
    status: str = Field(max_length=20, description="pending_review | refer")
    rules: list[str] = Field(sa_column=Column(JSON, nullable=False))
    label: str = Field(max_length=100)
    score_ppm: int
    purpose: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


class PredictionOutcome(SQLModel, table=True):
    """The true label of a prediction, as the business learned it."""

    __tablename__ = "prediction_outcomes"

    prediction_id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    model_version_id: str = Field(max_length=40, index=True)
    label: str = Field(max_length=100)
    predicted_label: str = Field(max_length=100)
    score_ppm: int
    predicted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    recorded_by: str = Field(max_length=60)
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class MonitoringAggregate(SQLModel, table=True):
    """One flushed delta of drift aggregates for a version and window (append-only, so
    replicas never contend; a window's aggregate is the sum of its deltas)."""

    __tablename__ = "monitoring_aggregates"

    id: str = Field(primary_key=True, max_length=40)
    model_version_id: str = Field(max_length=40, index=True)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    count: int
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


REFERENCE_READY = "ready"
REFERENCE_PENDING = "pending"
REFERENCE_FAILED = "failed"


class MonitoringReference(SQLModel, table=True):
    """The validation-time reference of a version: the same aggregates over its
    evaluation split, and its quality there.

    ``status`` is ``ready`` (the aggregates are the reference), ``pending`` (approval
    asked for one; it is being built, or the build was lost and must be re-run) or
    ``failed`` (``detail`` says why); only a ready row is scored against. ``meta``: what it
    was built from (dataset version, split, rows used and available, sample seed)."""

    __tablename__ = "monitoring_references"

    model_version_id: str = Field(primary_key=True, max_length=40)
    count: int
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    quality: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(
        default=REFERENCE_READY,
        sa_column=Column(String(20), nullable=False, server_default=REFERENCE_READY),
    )
    detail: str | None = Field(default=None, max_length=500)
    meta: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class MonitoringAlert(SQLModel, table=True):
    """A threshold crossed by a version in a window (one per version, window, feature)."""

    __tablename__ = "monitoring_alerts"
    __table_args__ = (
        UniqueConstraint(
            "model_version_id", "window_start", "feature", name="uq_monitoring_alerts_window"
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    model_version_id: str = Field(max_length=40, index=True)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    feature: str = Field(max_length=40)
    metric: str = Field(max_length=20)
    value: float
    threshold: float
    action: str = Field(default="alert", max_length=20)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
