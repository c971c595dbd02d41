"""Tables of the model registry: models, their versions and erasure flags (request and
response schemas: ``privet.models.schemas``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

OBJECT_KIND = "model_version"
"""Crypto object kind of a version's weights (``ObjectRef(kind, version id, project)``)."""
WEIGHTS_PART = "weights"


class ModelVersionState(StrEnum):
    candidate = "candidate"
    approved = "approved"
    suspended = "suspended"  # stopped by monitoring (live quality floor); an approver resumes
    retired = "retired"


TRANSITIONS: dict[ModelVersionState, frozenset[ModelVersionState]] = {
    ModelVersionState.candidate: frozenset({ModelVersionState.approved, ModelVersionState.retired}),
    ModelVersionState.approved: frozenset({ModelVersionState.retired, ModelVersionState.suspended}),
    ModelVersionState.suspended: frozenset({ModelVersionState.approved, ModelVersionState.retired}),
    ModelVersionState.retired: frozenset(),
}


class ModelBase(SQLModel):
    name: str = Field(max_length=100)


class Model(ModelBase, table=True):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_models_project_name"),)

    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=60)
    latest_version: int = 0


class ModelVersionBase(SQLModel):
    number: int
    state: str = Field(default=ModelVersionState.candidate.value, max_length=20)
    job_id: str = Field(max_length=40, index=True)
    submitted_by: str = Field(max_length=60, description="Principal ref of the job's submitter.")
    base_model: str = Field(max_length=100)
    base_model_sha256: str = Field(max_length=80)
    label_names: list[str] = Field(sa_column=Column(JSON, nullable=False))
    purposes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    dataset_versions: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    private: bool
    privacy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    metrics: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    training: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    lineage: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    weights_sha256: str = Field(max_length=80)
    weights_bytes: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    approved_by: str | None = Field(default=None, max_length=60)
    retired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    retired_by: str | None = Field(default=None, max_length=60)
    retire_reason: str | None = Field(default=None, max_length=500)


class ModelVersion(ModelVersionBase, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number", name="uq_model_versions_number"),
        #: the console's version lists, newest first: across projects, in a state, in one (0025)
        Index("ix_model_versions_created", "created_at", "id"),
        Index("ix_model_versions_state_created", "state", "created_at", "id"),
        Index("ix_model_versions_project_created", "project_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    model_id: str = Field(max_length=40, foreign_key="models.id", index=True)
    project_id: str = Field(max_length=40)
    card: str = Field(sa_column=Column(Text, nullable=False))
    blob_key: str = Field(max_length=400)
    data_key_id: str = Field(max_length=40)


# --- erasure flags ---------------------------------------------------------------------------

FLAG_ID_PREFIX = "mvf"
ERASURE_FLAG_RULE = "model.erasure-flag-unresolved"
"""The rule id a refused approval names (a service check in `approve`)."""


class FlagSource(StrEnum):
    erasure_request = "erasure_request"
    """A data-subject erasure request found the version among the affected."""
    erasure = "erasure"
    """A steward's ``:erase-subjects`` on the dataset found it among the affected."""
    registration = "registration"
    """Its job's dataset version was erased while the job ran (before it registered)."""


class FlagState(StrEnum):
    open = "open"
    """The version cannot be approved (or resumed) until the remedy is applied."""
    resolved = "resolved"


class ModelVersionFlag(SQLModel, table=True):
    """A model version trained on rows an erasure removed, and the remedy applied.

    Every flag starts open; it is cleared only explicitly (``resolve_erasure_flags``,
    audited) when the erasure policy allows keeping the version. Otherwise the remedy is
    retraining on the dataset's version without the subject, and the flagged version can
    only be retired."""

    __tablename__ = "model_version_erasure_flags"

    id: str = Field(primary_key=True, max_length=40)
    request_id: str | None = Field(default=None, max_length=40, index=True)
    model_version_id: str = Field(max_length=40, index=True)
    project_id: str = Field(max_length=40, index=True)
    dataset_version_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    remedy: str = Field(max_length=20)
    justification: str = Field(max_length=2000)
    retrain_job_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    source: str = Field(default=FlagSource.erasure_request.value, max_length=20)
    state: str = Field(default=FlagState.open.value, max_length=20)
    resolution: str | None = Field(default=None, max_length=20)
    resolved_by: str | None = Field(default=None, max_length=40)
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
