"""Tables and schemas of training jobs and the per-dataset privacy-budget ledger."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import StringConstraints, model_validator
from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.schemas import StrictSchema
from privet.kit.types import UTCDateTime


class JobState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.queued: frozenset({JobState.running, JobState.cancelled, JobState.failed}),
    JobState.running: frozenset({JobState.succeeded, JobState.failed, JobState.cancelled}),
    JobState.succeeded: frozenset(),
    JobState.failed: frozenset(),
    JobState.cancelled: frozenset(),
}
"""The durable state machine: queued → running → succeeded | failed | cancelled
(a queued job may also be cancelled, or failed when it cannot start)."""


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


class TrainingJobBase(SQLModel):
    project_id: str = Field(max_length=40, index=True)
    dataset_version_id: str = Field(max_length=40, index=True)
    dataset_id: str | None = Field(default=None, max_length=40)
    dataset_digest: str | None = Field(default=None, max_length=80)
    model_name: str = Field(max_length=100)
    base_model: str = Field(max_length=100)
    purpose: str = Field(max_length=64)
    private: bool
    target_epsilon: float | None = None
    delta: float | None = None
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(default=JobState.queued.value, max_length=20)
    submitted_by: str = Field(max_length=60, description="Principal ref, e.g. User:<id>.")
    submitted_by_id: str = Field(max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    worker_id: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cancel_requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    progress: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Why the job ended as it did, in the platform's words (never an "
        "exception's message: see error_detail).",
    )
    error_code: str | None = Field(
        default=None,
        max_length=40,
        description="How a failed or cancelled job ended: one of JobEnd (the ledger "
        "records this code, never text).",
    )
    epsilon_reserved: float | None = None
    model_version_id: str | None = Field(default=None, max_length=40)


class JobEnd(StrEnum):
    """Why a job ended other than by success: the only cause the ledger records."""

    cancelled_on_request = "cancelled_on_request"
    worker_shutdown = "worker_shutdown"
    heartbeat_lost = "heartbeat_lost"
    training_error = "training_error"
    registration_failed = "registration_failed"


class TrainingJob(TrainingJobBase, table=True):
    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_state_created", "state", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    #: the failure's own text (an exception message may quote a training row), sealed
    #: with the job's error data key (privet.jobs.errortext)
    error_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class TrainingJobPublic(TrainingJobBase):
    id: str
    error_detail: str | None = Field(
        default=None,
        description="The failure's own text (e.g. the exception message), for the job's "
        "readers; sealed at rest, shown on GET of one job.",
    )


# --- privacy-budget ledger ---------------------------------------------------------------


class BudgetEntryKind(StrEnum):
    reserve = "reserve"
    """ε held for a queued job (at admission)."""
    charge = "charge"
    """The reservation becomes spent ε (at start); never refunded afterwards."""
    release = "release"
    """A reservation returned because its job never started (cancelled while queued)."""


class PrivacyBudget(SQLModel, table=True):
    """Running totals per dataset, shared by all its versions (uploads and the versions
    erasure derives): the same people's ε is never counted afresh (docs/PRIVACY.md).
    The row is locked while a request is admitted, charged or released."""

    __tablename__ = "privacy_budgets"

    dataset_id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    epsilon_total: float
    """The dataset's total: the smallest any of its versions declared (it never rises)."""
    delta: float
    """The smallest δ any version declared (each job's δ is at most its version's)."""
    epsilon_reserved: float = 0.0
    """Held by queued jobs on any version (not yet spent)."""
    epsilon_charged: float = 0.0
    """Spent by jobs on any version that started (whatever became of them)."""
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    @property
    def epsilon_remaining(self) -> float:
        return max(0.0, self.epsilon_total - self.epsilon_reserved - self.epsilon_charged)


class PrivacyBudgetEntry(SQLModel, table=True):
    """Append-only history of every reservation, charge and release."""

    __tablename__ = "privacy_budget_entries"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", name="uq_privacy_budget_entries_job_kind"),
    )

    id: str = Field(primary_key=True, max_length=40)
    dataset_id: str = Field(max_length=40, index=True)
    """The budget (dataset) the entry counts against."""
    dataset_version_id: str = Field(max_length=40, index=True)
    """The version the job trains on."""
    project_id: str = Field(max_length=40)
    job_id: str = Field(max_length=40, index=True)
    kind: str = Field(max_length=20)
    epsilon: float
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ledger_entry_id: int | None = None


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
