"""Tables of the datasets domain (request and response schemas: ``privet.datasets.schemas``).

A *dataset* is a named series of immutable *versions*. A version's rows live only in one
encrypted blob (object kind ``dataset_version``); the tables hold metadata, statistics and
declarations, never a row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

OBJECT_KIND = "dataset_version"
"""The crypto object kind of a version's blob (``ObjectRef(kind, version id, project)``)."""


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) bases."""

    consent = "consent"
    contract = "contract"
    legal_obligation = "legal_obligation"
    vital_interests = "vital_interests"
    public_task = "public_task"
    legitimate_interests = "legitimate_interests"


class DataFormat(StrEnum):
    csv = "csv"
    tsv = "tsv"
    jsonl = "jsonl"
    parquet = "parquet"


class VersionState(StrEnum):
    active = "active"
    shredded = "shredded"


class DatasetBase(SQLModel):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=2000)


class Dataset(DatasetBase, table=True):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),)

    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)
    latest_version: int = Field(default=0)


class DatasetVersionBase(SQLModel):
    number: int
    format: str = Field(max_length=20)
    digest: str = Field(max_length=80, description="sha256:<hex> of the canonical content.")
    source_sha256: str = Field(max_length=80, description="sha256:<hex> of the uploaded bytes.")
    source_bytes: int
    row_count: int
    label_counts: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    split: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    declarations: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    pii_scan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    epsilon_total: float
    delta: float
    state: str = Field(default=VersionState.active.value, max_length=20)
    parent_version_id: str | None = Field(default=None, max_length=40)
    created_by: str = Field(max_length=40)


class DatasetVersion(DatasetVersionBase, table=True):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_number"),
        Index("ix_dataset_versions_retention", "state", "retention_until"),
    )

    id: str = Field(primary_key=True, max_length=40)
    dataset_id: str = Field(max_length=40, foreign_key="datasets.id", index=True)
    project_id: str = Field(max_length=40, index=True)
    blob_key: str = Field(max_length=400)
    blob_sha256: str = Field(max_length=80)
    blob_bytes: int
    data_key_id: str = Field(max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    retention_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    shredded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    shred_reason: str | None = Field(default=None, max_length=40)


class DatasetVersionUsage(SQLModel, table=True):
    """Which dataset versions an artifact (e.g. a model version) was derived from.

    Written by the jobs layer through ``record_usage``; erasure reports from it.
    """

    __tablename__ = "dataset_version_usage"

    dataset_version_id: str = Field(
        primary_key=True, max_length=40, foreign_key="dataset_versions.id"
    )
    used_by_kind: str = Field(primary_key=True, max_length=40)
    used_by_id: str = Field(primary_key=True, max_length=100, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
