"""Request and response schemas of the model registry (its tables: ``privet.models.tables``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel import Field, SQLModel

from privet.kit.schemas import StrictSchema
from privet.models.tables import ModelBase, ModelVersionBase


class ErasureFlagPublic(SQLModel):
    id: str
    request_id: str | None
    source: str
    state: str
    dataset_version_ids: list[str]
    remedy: str
    justification: str
    retrain_job_id: str | None
    created_at: datetime
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None


class ResolveErasureFlagsRequest(StrictSchema):
    """Clear a version's open erasure flags by recording the remedy applied. Only keeping
    a DP-trained version, where the erasure policy allows it, clears them; the other
    remedy (retraining) replaces the version instead."""

    remedy: Literal["keep_with_dp"]


class ErasureFlagsPublic(SQLModel):
    model_version_id: str
    state: str
    erasure_flags: list[ErasureFlagPublic]


class ModelVersionPublic(ModelVersionBase):
    id: str
    model_id: str
    model_name: str
    project_id: str


class ModelVersionDetail(ModelVersionPublic):
    card: str
    erasure_flags: list[ErasureFlagPublic] = Field(
        default_factory=list,
        description="Erasures that removed rows it was trained on; an open one blocks approval.",
    )


class ModelPublic(ModelBase):
    id: str
    project_id: str
    created_at: datetime
    created_by: str
    latest_version: int


class ModelDetail(ModelPublic):
    versions: list[ModelVersionPublic]


class RetireRequest(SQLModel):
    reason: str | None = Field(default=None, max_length=500)
