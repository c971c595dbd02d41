"""Tables and schemas of the datasets domain (SQLModel families: Base / Create / table / Public).

A *dataset* is a named series of immutable *versions*. A version's rows live only in one
encrypted blob (object kind ``dataset_version``); the tables hold metadata, statistics and
declarations, never a row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import StringConstraints, field_validator, model_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.schemas import StrictSchema
from privet.kit.types import UTCDateTime

OBJECT_KIND = "dataset_version"
"""The crypto object kind of a version's blob (``ObjectRef(kind, version id, project)``)."""

DEFAULT_EPSILON_TOTAL = 8.0
"""Privacy budget when none is declared; per-category ceilings are enforced by policy."""

MIN_ROWS_PER_LABEL = 3
"""Each label needs one row in each of train, validation and test."""

MAX_LABELS = 1000


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


Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
DatasetName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
]


class PrivacyBudgetDeclaration(StrictSchema):
    epsilon_total: float = Field(
        default=DEFAULT_EPSILON_TOTAL, gt=0, le=100, description="Total ε all training may spend."
    )
    delta: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="δ; default 1/(10·rows), recorded on the version once rows are counted.",
    )


class SplitSpec(StrictSchema):
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    validation: float = Field(default=0.1, gt=0, lt=0.5)
    test: float = Field(default=0.1, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _leave_training_rows(self) -> SplitSpec:
        if self.validation + self.test >= 0.9:
            raise ValueError("validation + test must leave at least 10% for training")
        return self


class Declarations(StrictSchema):
    """What the uploader declares; stored with every version, read by policy and reports."""

    text_column: ColumnName
    label_column: ColumnName
    subject_id_column: ColumnName | None = None
    subject_ids_unique: bool = Field(
        default=False, description="Refuse the upload if a subject id occurs twice."
    )
    contains_personal_data: bool
    data_categories: list[Token] = Field(default_factory=list, max_length=32)
    purposes: list[Token] = Field(min_length=1, max_length=32)
    legal_basis: LegalBasis
    retention_days: int = Field(ge=1, le=36500)
    privacy_budget: PrivacyBudgetDeclaration = Field(default_factory=PrivacyBudgetDeclaration)
    split: SplitSpec = Field(default_factory=SplitSpec)

    @field_validator("data_categories", "purposes")
    @classmethod
    def _unique_sorted(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _columns(self) -> Declarations:
        cols = [self.text_column, self.label_column]
        if self.subject_id_column is not None:
            cols.append(self.subject_id_column)
        if len(set(cols)) != len(cols):
            raise ValueError("text, label and subject-id columns must be different columns")
        if self.contains_personal_data and self.subject_id_column is None:
            raise ValueError(
                "subject_id_column is required when contains_personal_data is true "
                "(erasure by data subject needs it)"
            )
        if self.subject_ids_unique and self.subject_id_column is None:
            raise ValueError("subject_ids_unique needs a subject_id_column")
        return self


class UploadDeclarations(Declarations):
    """The JSON part `declarations` of an upload: declarations plus dataset name and format."""

    name: DatasetName | None = Field(
        default=None, description="Dataset name (new datasets only; default: the file name)."
    )
    description: str = Field(default="", max_length=2000)
    format: DataFormat | None = Field(
        default=None, description="File format; default: from the file name or content type."
    )


# --- tables -------------------------------------------------------------------------------


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


# --- API schemas --------------------------------------------------------------------------


class DatasetVersionPublic(DatasetVersionBase):
    id: str
    dataset_id: str
    project_id: str
    created_at: datetime
    retention_until: datetime
    shredded_at: datetime | None
    shred_reason: str | None


class DatasetPublic(DatasetBase):
    id: str
    project_id: str
    created_at: datetime
    created_by: str
    latest_version: int


class DatasetDetail(DatasetPublic):
    versions: list[DatasetVersionPublic]


class UploadResult(DatasetVersionPublic):
    """A registered version plus the warnings the upload raised (e.g. the PII scan's)."""

    dataset_name: str
    warnings: list[str]


class EraseSubjectsRequest(StrictSchema):
    subject_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=10000
    )


class AffectedUsage(SQLModel):
    dataset_version_id: str
    used_by_kind: str
    used_by_id: str


class ErasureResult(SQLModel):
    dataset_id: str
    subjects: list[str] = Field(description="Pseudonyms (hmac-sha256) of the requested ids.")
    subjects_found: int
    rows_removed: int
    new_version: DatasetVersionPublic | None
    shredded_versions: list[str]
    affected: list[AffectedUsage]


class SweepResult(SQLModel):
    shredded_versions: list[str]
    affected: list[AffectedUsage]
    orphan_blobs_removed: int = 0


Split = Literal["train", "validation", "test"]
