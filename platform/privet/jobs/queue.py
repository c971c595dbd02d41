"""The durable job queue in the database: claim, heartbeat, reap, finish.

Claiming is exactly-once: on PostgreSQL the next queued row is selected ``FOR UPDATE SKIP
LOCKED`` (concurrent workers skip each other's candidate instead of waiting on it); on
SQLite every transaction starts with ``BEGIN IMMEDIATE`` and so holds the database write
lock. In both cases the state change is a conditional update (``WHERE state = 'queued'``)
whose row count is checked, so a job can never be started twice.

Starting a job charges its ε in the same transaction, before any data is read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from privet import ledger
from privet.jobs import budget
from privet.jobs.tables import TERMINAL_STATES, TRANSITIONS, JobEnd, JobState, TrainingJob
from privet.kit.errors import ConflictError
from privet.kit.ids import utcnow

_jobs = TrainingJob.__table__  # type: ignore[attr-defined]


def check_transition(current: str, target: JobState) -> None:
    if target not in TRANSITIONS[JobState(current)]:
        raise ConflictError(f"a {current} training job cannot become {target.value}")


def claim_next(session: Session, *, worker_id: str) -> TrainingJob | None:
    """Take the oldest queued job for `worker_id`: running, ε charged; None when idle."""
    query = (
        select(TrainingJob.id)
        .where(TrainingJob.state == JobState.queued.value)
        .order_by(col(TrainingJob.created_at), col(TrainingJob.id))
        .limit(1)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    job_id = session.exec(query).first()
    if job_id is None:
        return None
    now = utcnow()
    result: Any = session.execute(
        update(_jobs)
        .where(_jobs.c.id == job_id, _jobs.c.state == JobState.queued.value)
        .values(
            state=JobState.running.value,
            worker_id=worker_id,
            started_at=now,
            heartbeat_at=now,
        )
    )
    if result.rowcount != 1:  # another worker won it (cannot happen under the lock)
        return None
    job = session.exec(
        select(TrainingJob)
        .where(TrainingJob.id == job_id)
        .execution_options(populate_existing=True)
    ).one()
    charged = budget.charge(session, job=job, actor=None) if job.private else 0.0
    ledger.emit(
        session,
        type="training_job.started",
        actor=None,
        project=job.project_id,
        objects={"training_job": job.id, "dataset_version": job.dataset_version_id},
        details={"worker": _event_id(worker_id), "epsilon_charged": budget.eps_text(charged)},
    )
    return job


def _event_id(text: str) -> str:
    """A worker id made safe for the event schema's id form."""
    safe = "".join(c if c.isalnum() or c in "._:@/-" else "-" for c in text)
    return safe[:128] or "worker"


def heartbeat(
    session: Session, *, job_id: str, worker_id: str, progress: dict[str, Any] | None
) -> tuple[bool, bool]:
    """Record the worker's heartbeat (and progress); returns (still_owned, cancel_requested).

    `still_owned` is False once the job is no longer this worker's running job (reaped or
    finished): the worker must then abandon it without writing anything."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    result: Any = session.execute(
        update(_jobs)
        .where(
            _jobs.c.id == job_id,
            _jobs.c.worker_id == worker_id,
            _jobs.c.state == JobState.running.value,
        )
        .values(**values)
    )
    if result.rowcount != 1:
        return False, True
    requested = session.execute(
        select(_jobs.c.cancel_requested_at).where(_jobs.c.id == job_id)
    ).scalar_one()
    return True, requested is not None


def reap_stale(session: Session, *, timeout_s: float) -> list[str]:
    """Fail running jobs whose worker stopped heartbeating; their ε stays charged."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    query = select(TrainingJob).where(
        TrainingJob.state == JobState.running.value, col(TrainingJob.heartbeat_at) < cutoff
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    reaped = []
    for job in session.exec(query).all():
        reason = (
            f"worker {job.worker_id} stopped sending heartbeats (none for over "
            f"{timeout_s:g} s; last at {job.heartbeat_at.isoformat() if job.heartbeat_at else '?'})"
            "; the job was abandoned mid-training and its ε stays charged"
        )
        finish(
            session,
            job=job,
            state=JobState.failed,
            reason=reason,
            error=JobEnd.heartbeat_lost,
            actor=None,
        )
        reaped.append(job.id)
    return reaped


def finish(
    session: Session,
    *,
    job: TrainingJob,
    state: JobState,
    reason: str | None = None,
    error: JobEnd | None = None,
    error_type: str | None = None,
    result: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
    actor: str | None = None,
    details: dict[str, Any] | None = None,
) -> TrainingJob:
    """Move a job to a terminal state and ledger it (`training_job.<state>`).

    ``reason`` (the platform's own sentence) is kept on the job; the event records only
    the ``error`` code and the exception's class name, never text."""
    if state not in TERMINAL_STATES:
        raise ValueError(f"{state} is not a terminal state")
    check_transition(job.state, state)
    job.state = state.value
    job.finished_at = utcnow()
    if reason is not None:
        job.reason = reason[:2000]
    if error is not None:
        job.error_code = error.value
    if result is not None:
        job.result = result
    if progress is not None:
        job.progress = progress
    session.add(job)
    event_details: dict[str, Any] = {"error": error.value if error else None}
    if error_type is not None:
        event_details["error_type"] = error_type
    event_details.update(details or {})
    ledger.emit(
        session,
        type=f"training_job.{state.value}",
        actor=actor,
        project=job.project_id,
        objects={"training_job": job.id, "dataset_version": job.dataset_version_id},
        outcome="error" if state == JobState.failed else "ok",
        details=event_details,
    )
    return job


def lock_owned(session: Session, *, job_id: str, worker_id: str) -> TrainingJob | None:
    """The job locked for update if it is still this worker's running job, else None."""
    job = session.exec(
        select(TrainingJob)
        .where(TrainingJob.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if job is None or job.state != JobState.running.value or job.worker_id != worker_id:
        return None
    return job
