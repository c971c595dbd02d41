"""Request and response schemas of monitoring (its tables: ``privet.monitoring.tables``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PField

from privet.models.schemas import ModelVersionPublic


class OutcomeCreate(BaseModel):
    label: str = PField(min_length=1, max_length=100, description="The true label.")


class OutcomePublic(BaseModel):
    prediction_id: str
    model_version_id: str
    label: str
    predicted_label: str
    correct: bool
    recorded_at: datetime


class QueueItem(BaseModel):
    prediction_id: str
    model_version_id: str
    status: str
    rules: list[str]
    label: str
    score: float
    purpose: str
    created_at: datetime
    review: str | None = None
    reviewed_label: str | None = None
    reviewed_at: datetime | None = None


class ReviewQueue(BaseModel):
    items: list[QueueItem]
    open: int
    next: str | None = PField(
        default=None, description="Pass as after= for the next page; null: the last page."
    )


class ResumeRequest(BaseModel):
    reason: str = PField(default="", max_length=500)


class ReferenceStatus(BaseModel):
    """Where a version's drift reference stands, and how to rebuild it."""

    model_version_id: str
    status: str = PField(
        description="ready | pending | failed | none (no reference row: only label drift "
        "is scored, against the evaluation's confusion matrix)"
    )
    source: str | None = None
    examples: int = PField(default=0, description="Rows classified for the reference.")
    rows_available: int | None = PField(
        default=None, description="Rows in the split it was built from (before sampling)."
    )
    split: str | None = None
    dataset_version_id: str | None = None
    detail: str | None = None
    reason: str | None = PField(default=None, description="Why the last build failed (slug).")
    updated_at: datetime | None = None
    rebuild: str = PField(description="POST this path to (re)build the reference.")


class ApprovedVersionPublic(ModelVersionPublic):
    """An approved version, and its monitoring reference (built after the approval
    commits: ``pending`` in the approval's answer)."""

    monitoring_reference: ReferenceStatus | None = None
