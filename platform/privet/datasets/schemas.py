"""Request and response schemas of the datasets domain (its tables: ``privet.datasets.tables``).

``Declarations`` is what an uploader declares: the upload's request part, stored with
every version as JSON and read back through this schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints, field_validator, model_validator
from sqlmodel import Field, SQLModel

from privet.datasets.tables import DataFormat, DatasetBase, DatasetVersionBase, LegalBasis
from privet.kit.schemas import StrictSchema

DEFAULT_EPSILON_TOTAL = 8.0
"""Privacy budget when none is declared; per-category ceilings are enforced by policy."""

RULE_UNLABELLED_NON_PERSONAL = "datasets.unlabelled.non-personal"

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
    label_column: ColumnName | None = Field(
        default=None, description="Column holding the label (absent when unlabelled)."
    )
    unlabelled: bool = Field(
        default=False,
        description="The file has no label column: texts declared non-personal, usable only "
        "as distillation input (a student learns a DP teacher's labels on them).",
    )
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
        self._check_labelling()
        cols = [self.text_column, self.label_column, self.subject_id_column]
        cols = [c for c in cols if c is not None]
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

    def _check_labelling(self) -> None:
        """A label column, or the declaration that there is none (non-personal texts only:
        the student of a distillation trains on them without differential privacy)."""
        if not self.unlabelled:
            if self.label_column is None:
                raise ValueError(
                    "label_column is required, unless the texts are declared unlabelled "
                    "(unlabelled: true, non-personal only: distillation input)"
                )
            return
        if self.contains_personal_data:
            raise ValueError(
                f"refused by {RULE_UNLABELLED_NON_PERSONAL}: unlabelled texts are accepted "
                "only when declared non-personal (contains_personal_data: false): they "
                "serve only as distillation input, on which a student trains without "
                "differential privacy"
            )
        if self.label_column is not None:
            raise ValueError("an unlabelled upload has no label column: omit label_column")


class UploadDeclarations(Declarations):
    """The JSON part `declarations` of an upload: declarations plus dataset name and format."""

    name: DatasetName | None = Field(
        default=None, description="Dataset name (new datasets only; default: the file name)."
    )
    description: str = Field(default="", max_length=2000)
    format: DataFormat | None = Field(
        default=None, description="File format; default: from the file name or content type."
    )


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
