"""Request and response schemas of training jobs and the privacy budget (their tables:
``privet.jobs.tables``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import StringConstraints, model_validator
from sqlmodel import Field, SQLModel

from privet.jobs.tables import TrainingJobBase
from privet.kit.schemas import StrictSchema

Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
]
StrategyText = Annotated[str, StringConstraints(pattern=r"^(full|bitfit|head|top-[1-9][0-9]?)$")]


class TrainingJobCreate(StrictSchema):
    """A training request. Privacy parameters are required for private training."""

    dataset_version_id: str = Field(min_length=1, max_length=40)
    base_model: str = Field(default="minilm-l6", min_length=1, max_length=100)
    purpose: Token | None = Field(
        default=None, description="Purpose of the model; default: the dataset's only purpose."
    )
    model_name: ModelName | None = Field(
        default=None, description="Registry model the result becomes a version of."
    )
    private: bool = Field(default=True, description="DP-SGD; false only for non-personal data.")
    target_epsilon: float | None = Field(default=None, gt=0, le=100)
    delta: float | None = Field(default=None, gt=0, lt=1)
    epochs: int = Field(default=6, ge=1, le=100)
    batch_size: int = Field(
        default=256, ge=1, le=65536, description="Logical (expected Poisson) batch size."
    )
    physical_batch_size: int = Field(default=64, ge=1, le=4096)
    learning_rate: float = Field(
        default=0.3, gt=0, le=1, description="Learning rate of the trainable encoder parameters."
    )
    max_length: int = Field(default=64, ge=8, le=512)
    strategy: StrategyText = Field(default="bitfit", description="full, bitfit, head or top-<k>.")
    head_learning_rate: float | None = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Learning rate of the classification head (null: learning_rate).",
    )
    optimizer: Literal["adamw", "sgd"] = Field(
        default="sgd", description="sgd (momentum 0.9; best measured under DP), or adamw."
    )
    lr_schedule: Literal["constant", "linear"] = Field(
        default="linear", description="Learning rate kept constant or decayed linearly to 0."
    )
    accountant: Literal["prv", "rdp"] = "prv"
    max_grad_norm: float = Field(default=1.0, gt=0, le=100)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    workers: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Data-parallel training processes (Ray executor); default from settings.",
    )

    @model_validator(mode="after")
    def _privacy(self) -> TrainingJobCreate:
        if self.private and self.target_epsilon is None:
            raise ValueError("target_epsilon is required for private (DP) training")
        if not self.private and (self.target_epsilon is not None or self.delta is not None):
            raise ValueError("non-private training takes no target_epsilon or delta")
        return self


class TrainingJobPublic(TrainingJobBase):
    id: str
    error_detail: str | None = Field(
        default=None,
        description="The failure's own text (e.g. the exception message), for the job's "
        "readers; sealed at rest, shown on GET of one job.",
    )


BUDGET_SCOPE_NOTE = (
    "dataset-wide: one budget for every version of the dataset (new uploads and the "
    "versions erasure derives); ε spent or reserved on any version counts against all"
)


class PrivacyBudgetPublic(SQLModel):
    scope: Literal["dataset"] = "dataset"
    note: str = BUDGET_SCOPE_NOTE
    dataset_id: str
    dataset_version_id: str | None = Field(
        default=None, description="The version asked about; the totals are the dataset's."
    )
    project_id: str
    epsilon_total: float
    delta: float
    epsilon_reserved: float
    epsilon_charged: float
    epsilon_remaining: float
    delta_charged: float = Field(
        default=0.0,
        description="Sum of the δ of the charged jobs: the dataset's δ under basic "
        "sequential composition.",
    )
    entries: list[dict[str, Any]]
