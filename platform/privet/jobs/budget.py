"""The privacy-budget ledger of each dataset version.

A private job *reserves* its target ε when it is admitted and is refused, before any
training, if the version's remaining budget cannot cover it. When a worker starts the job
the reservation is *charged*: from then on it is spent, whatever becomes of the job
(failure, cancellation or a dead worker never refund it — the data has been touched). Only a
job cancelled while still queued *releases* its reservation.

Admission locks the version's `privacy_budgets` row (PostgreSQL ``SELECT ... FOR UPDATE``;
SQLite transactions already hold the database write lock from ``BEGIN IMMEDIATE``), so
two concurrent requests can never both take the last of a budget. Every change is also an
append-only `privacy_budget_entries` row and a ledger event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from privet import ledger
from privet.jobs.sources import DatasetFacts
from privet.jobs.tables import (
    BudgetEntryKind,
    PrivacyBudget,
    PrivacyBudgetEntry,
    PrivacyBudgetPublic,
    TrainingJob,
)
from privet.kit.errors import ConflictError, NotFoundError
from privet.kit.ids import new_id, utcnow

EPSILON_SLACK = 1e-9
"""Float tolerance when comparing sums of ε with a budget (never in the job's favour
beyond rounding noise)."""


class BudgetExceededError(ConflictError):
    slug = "privacy-budget-exceeded"
    title = "Privacy budget exceeded"


def eps_text(value: float | None) -> str | None:
    """ε as text for audit events (events carry no floats)."""
    return None if value is None else format(float(value), ".6g")


def _lock(session: Session, *, facts: DatasetFacts) -> PrivacyBudget:
    """The version's budget row, created on first use and locked for this transaction."""
    values = {
        "dataset_version_id": facts.version_id,
        "project_id": facts.project_id,
        "epsilon_total": float(facts.epsilon_total),
        "delta": float(facts.delta),
        "epsilon_reserved": 0.0,
        "epsilon_charged": 0.0,
        "updated_at": utcnow(),
    }
    table = PrivacyBudget.__table__  # type: ignore[attr-defined]
    stmt: Any
    if session.get_bind().dialect.name == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    session.execute(stmt)
    query = (
        select(PrivacyBudget)
        .where(PrivacyBudget.dataset_version_id == facts.version_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(query).one()


def _entry(
    session: Session, *, budget: PrivacyBudget, job_id: str, kind: BudgetEntryKind, epsilon: float
) -> PrivacyBudgetEntry:
    entry = PrivacyBudgetEntry(
        id=new_id("pbe"),
        dataset_version_id=budget.dataset_version_id,
        project_id=budget.project_id,
        job_id=job_id,
        kind=kind.value,
        epsilon=epsilon,
        created_at=utcnow(),
    )
    session.add(entry)
    return entry


def _event_details(budget: PrivacyBudget, epsilon: float) -> dict[str, Any]:
    return {
        "epsilon": eps_text(epsilon),
        "epsilon_total": eps_text(budget.epsilon_total),
        "epsilon_reserved": eps_text(budget.epsilon_reserved),
        "epsilon_charged": eps_text(budget.epsilon_charged),
        "epsilon_remaining": eps_text(budget.epsilon_remaining),
    }


def remaining(session: Session, *, facts: DatasetFacts) -> float:
    """ε still available on the version (without locking; for messages and reports)."""
    budget = session.get(PrivacyBudget, facts.version_id)
    if budget is None:
        return float(facts.epsilon_total)
    return budget.epsilon_remaining


def lock_and_check(session: Session, *, facts: DatasetFacts, epsilon: float) -> PrivacyBudget:
    """Lock the version's budget for this transaction and raise BudgetExceededError unless
    `epsilon` fits in what is left (nothing is reserved yet)."""
    budget = _lock(session, facts=facts)
    used = budget.epsilon_reserved + budget.epsilon_charged
    if used + epsilon > budget.epsilon_total + EPSILON_SLACK:
        raise BudgetExceededError(
            f"this job asks for ε = {eps_text(epsilon)} but dataset version "
            f"{facts.version_id} has only ε = {eps_text(budget.epsilon_remaining)} left of its "
            f"budget of {eps_text(budget.epsilon_total)} ({eps_text(budget.epsilon_charged)} "
            f"spent, {eps_text(budget.epsilon_reserved)} reserved by queued jobs)",
            dataset_version_id=facts.version_id,
            epsilon_requested=epsilon,
            epsilon_remaining=budget.epsilon_remaining,
            epsilon_total=budget.epsilon_total,
        )
    return budget


def check_and_reserve(
    session: Session, *, facts: DatasetFacts, job_id: str, epsilon: float, actor: str
) -> PrivacyBudget:
    """Reserve `epsilon` for `job_id`, or raise BudgetExceededError (nothing reserved)."""
    budget = lock_and_check(session, facts=facts, epsilon=epsilon)
    budget.epsilon_reserved += epsilon
    budget.updated_at = utcnow()
    session.add(budget)
    entry = _entry(
        session, budget=budget, job_id=job_id, kind=BudgetEntryKind.reserve, epsilon=epsilon
    )
    entry.ledger_entry_id = ledger.emit(
        session,
        type="privacy_budget.reserved",
        actor=actor,
        project=facts.project_id,
        objects={"dataset_version": facts.version_id, "training_job": job_id},
        details=_event_details(budget, epsilon),
    )
    return budget


def _facts_of(job: TrainingJob, budget: PrivacyBudget) -> DatasetFacts:
    return DatasetFacts(
        version_id=job.dataset_version_id,
        dataset_id=job.dataset_id or "",
        project_id=job.project_id,
        digest=job.dataset_digest or "",
        row_count=0,
        contains_personal_data=True,
        categories=(),
        purposes=(),
        epsilon_total=budget.epsilon_total,
        delta=budget.delta,
    )


def _reservation(session: Session, job: TrainingJob) -> PrivacyBudgetEntry | None:
    return session.exec(
        select(PrivacyBudgetEntry).where(
            PrivacyBudgetEntry.job_id == job.id,
            PrivacyBudgetEntry.kind == BudgetEntryKind.reserve.value,
        )
    ).first()


def _locked_for_job(session: Session, job: TrainingJob) -> PrivacyBudget:
    existing = session.get(PrivacyBudget, job.dataset_version_id)
    if existing is None:
        raise NotFoundError(f"no privacy budget for dataset version {job.dataset_version_id}")
    return _lock(session, facts=_facts_of(job, existing))


def charge(session: Session, *, job: TrainingJob, actor: str | None) -> float:
    """Turn the job's reservation into spent ε (at start); returns the ε charged."""
    reservation = _reservation(session, job)
    if reservation is None:
        return 0.0
    budget = _locked_for_job(session, job)
    epsilon = reservation.epsilon
    budget.epsilon_reserved = max(0.0, budget.epsilon_reserved - epsilon)
    budget.epsilon_charged += epsilon
    budget.updated_at = utcnow()
    session.add(budget)
    entry = _entry(
        session, budget=budget, job_id=job.id, kind=BudgetEntryKind.charge, epsilon=epsilon
    )
    entry.ledger_entry_id = ledger.emit(
        session,
        type="privacy_budget.charged",
        actor=actor,
        project=job.project_id,
        objects={"dataset_version": job.dataset_version_id, "training_job": job.id},
        details=_event_details(budget, epsilon),
    )
    return epsilon


def release(session: Session, *, job: TrainingJob, actor: str | None) -> float:
    """Return a never-started job's reservation; refuses once the job has been charged."""
    reservation = _reservation(session, job)
    if reservation is None:
        return 0.0
    charged = session.exec(
        select(PrivacyBudgetEntry).where(
            PrivacyBudgetEntry.job_id == job.id,
            col(PrivacyBudgetEntry.kind).in_(
                [BudgetEntryKind.charge.value, BudgetEntryKind.release.value]
            ),
        )
    ).first()
    if charged is not None:
        raise ConflictError("this job's ε was already charged or released; it is never refunded")
    budget = _locked_for_job(session, job)
    epsilon = reservation.epsilon
    budget.epsilon_reserved = max(0.0, budget.epsilon_reserved - epsilon)
    budget.updated_at = utcnow()
    session.add(budget)
    entry = _entry(
        session, budget=budget, job_id=job.id, kind=BudgetEntryKind.release, epsilon=epsilon
    )
    entry.ledger_entry_id = ledger.emit(
        session,
        type="privacy_budget.released",
        actor=actor,
        project=job.project_id,
        objects={"dataset_version": job.dataset_version_id, "training_job": job.id},
        details=_event_details(budget, epsilon),
    )
    return epsilon


def budget_status(session: Session, *, dataset_version_id: str) -> PrivacyBudgetPublic | None:
    """The version's totals and full history (None before its first reservation)."""
    budget = session.get(PrivacyBudget, dataset_version_id)
    if budget is None:
        return None
    entries = session.exec(
        select(PrivacyBudgetEntry)
        .where(PrivacyBudgetEntry.dataset_version_id == dataset_version_id)
        .order_by(col(PrivacyBudgetEntry.created_at), col(PrivacyBudgetEntry.id))
    ).all()
    return PrivacyBudgetPublic(
        dataset_version_id=budget.dataset_version_id,
        project_id=budget.project_id,
        epsilon_total=budget.epsilon_total,
        delta=budget.delta,
        epsilon_reserved=budget.epsilon_reserved,
        epsilon_charged=budget.epsilon_charged,
        epsilon_remaining=budget.epsilon_remaining,
        entries=[
            {
                "job_id": e.job_id,
                "kind": e.kind,
                "epsilon": e.epsilon,
                "created_at": e.created_at.isoformat(),
                "ledger_entry_id": e.ledger_entry_id,
            }
            for e in entries
        ],
    )
