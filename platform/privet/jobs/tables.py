"""Tables of training jobs and the per-dataset privacy-budget ledger (request and response
schemas: ``privet.jobs.schemas``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

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


class TrainingJobBase(SQLModel):
    project_id: str = Field(max_length=40)
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
    init_from_model_version_id: str | None = Field(
        default=None,
        max_length=40,
        description="The approved model version whose weights the job starts from (a warm "
        "start); null: the base model's.",
    )
    recipe: dict[str, Any] | None = Field(
        default=None,
        sa_column=Column(JSON),
        description="Every hyperparameter the job runs with: chosen by the auto recipe "
        "(with its reason) or set by the caller, and the public facts it was chosen from.",
    )


class JobEnd(StrEnum):
    """Why a job ended other than by success: the only cause the ledger records."""

    cancelled_on_request = "cancelled_on_request"
    worker_shutdown = "worker_shutdown"
    heartbeat_lost = "heartbeat_lost"
    training_error = "training_error"
    registration_failed = "registration_failed"


class TrainingJob(TrainingJobBase, table=True):
    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_state_created", "state", "created_at"),
        #: the pages of GET /v1/projects/{id}/jobs, with and without ?state= (0017)
        Index("ix_training_jobs_project_created", "project_id", "created_at", "id"),
        Index("ix_training_jobs_project_state_created", "project_id", "state", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=40)
    #: the failure's own text (an exception message may quote a training row), sealed
    #: with the job's error data key (privet.jobs.errortext)
    error_sealed: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


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


# --- training history ------------------------------------------------------------------------


class TrainingJobHistory(SQLModel, table=True):
    """A job's training curve, written when the job ends (privet.jobs.history): loss and
    cumulative ε at evenly spaced steps (at most ``history.MAX_POINTS``) and a summary
    per epoch. Loss is the mean over each step's Poisson batch, as the job's progress
    already shows it; validation metrics only from model selection's DP releases."""

    __tablename__ = "training_job_histories"

    job_id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(max_length=40, index=True)
    total_steps: int
    stride: int
    """Every `stride`-th step is kept, with the first and the last."""
    points: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    epochs: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
