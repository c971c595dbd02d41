"""The privacy-budget ledger of each dataset, shared by all its versions.

The budget belongs to the dataset, not to one version of it: a subject in a new upload of
the dataset or in a version an erasure derived was in the earlier versions too, so the ε
spent on any version counts against every one (sequential composition; see
docs/PRIVACY.md). The dataset's total is the smallest any of its versions declared.

A private job *reserves* its target ε when it is admitted and is refused, before any
training, if the dataset's remaining budget cannot cover it. When a worker starts the job
the reservation is *charged*: from then on it is spent, whatever becomes of the job
(failure, cancellation or a dead worker never refund it — the data has been touched). Only a
job cancelled while still queued *releases* its reservation.

Admission locks the dataset's `privacy_budgets` row (PostgreSQL ``SELECT ... FOR UPDATE``;
SQLite transactions already hold the database write lock from ``BEGIN IMMEDIATE``), so
two concurrent requests can never both take the last of a budget. Every change is also an
append-only `privacy_budget_entries` row and a ledger event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from privet import ledger
from privet.jobs.schemas import PrivacyBudgetPublic
from privet.jobs.sources import DatasetFacts
from privet.jobs.tables import BudgetEntryKind, PrivacyBudget, PrivacyBudgetEntry, TrainingJob
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
    """The dataset's budget row, created on first use and locked for this transaction.

    A version that declares a smaller total (or δ) than the row holds lowers it: the
    strictest declaration binds every version."""
    if not facts.dataset_id:
        raise ValueError(f"dataset version {facts.version_id} has no dataset id")
    values = {
        "dataset_id": facts.dataset_id,
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
    budget = _locked(session, facts.dataset_id)
    if facts.epsilon_total < budget.epsilon_total or facts.delta < budget.delta:
        budget.epsilon_total = min(budget.epsilon_total, float(facts.epsilon_total))
        budget.delta = min(budget.delta, float(facts.delta))
        budget.updated_at = utcnow()
        session.add(budget)
    return budget


def _locked(session: Session, dataset_id: str) -> PrivacyBudget:
    query = (
        select(PrivacyBudget)
        .where(PrivacyBudget.dataset_id == dataset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.exec(query).one()


def _entry(
    session: Session,
    *,
    budget: PrivacyBudget,
    dataset_version_id: str,
    job_id: str,
    kind: BudgetEntryKind,
    epsilon: float,
) -> PrivacyBudgetEntry:
    entry = PrivacyBudgetEntry(
        id=new_id("pbe"),
        dataset_id=budget.dataset_id,
        dataset_version_id=dataset_version_id,
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
        "budget_scope": "dataset",
        "epsilon": eps_text(epsilon),
        "epsilon_total": eps_text(budget.epsilon_total),
        "epsilon_reserved": eps_text(budget.epsilon_reserved),
        "epsilon_charged": eps_text(budget.epsilon_charged),
        "epsilon_remaining": eps_text(budget.epsilon_remaining),
    }


_EVENT_TYPES = {
    BudgetEntryKind.reserve: "privacy_budget.reserved",
    BudgetEntryKind.charge: "privacy_budget.charged",
    BudgetEntryKind.release: "privacy_budget.released",
}


def _record(
    session: Session,
    *,
    budget: PrivacyBudget,
    dataset_version_id: str,
    job_id: str,
    project_id: str,
    kind: BudgetEntryKind,
    epsilon: float,
    actor: str | None,
) -> None:
    """Persist a change already made to `budget`: its row, the append-only entry and the
    ledger event, all in the caller's transaction."""
    budget.updated_at = utcnow()
    session.add(budget)
    entry = _entry(
        session,
        budget=budget,
        dataset_version_id=dataset_version_id,
        job_id=job_id,
        kind=kind,
        epsilon=epsilon,
    )
    entry.ledger_entry_id = ledger.emit(
        session,
        type=_EVENT_TYPES[kind],
        actor=actor,
        project=project_id,
        objects={
            "dataset": budget.dataset_id,
            "dataset_version": dataset_version_id,
            "training_job": job_id,
        },
        details=_event_details(budget, epsilon),
    )


def record_selection(session: Session, *, job: TrainingJob, privacy: dict[str, Any] | None) -> None:
    """Ledger how a succeeded job's charged ε split between training and model selection
    (the per-epoch DP validation releases), when it selected: the charge itself is the
    reservation (the target), and this says what the total composed from."""
    if not privacy or not privacy.get("selection_releases"):
        return
    reservation = _reservation(session, job)
    ledger.emit(
        session,
        type="privacy_budget.accounted",
        actor=None,
        project=job.project_id,
        objects={
            **({"dataset": job.dataset_id} if job.dataset_id else {}),
            "dataset_version": job.dataset_version_id,
            "training_job": job.id,
        },
        details={
            "budget_scope": "dataset",
            "epsilon_charged": eps_text(None if reservation is None else reservation.epsilon),
            "epsilon": eps_text(privacy.get("epsilon")),
            "epsilon_training": eps_text(privacy.get("epsilon_training")),
            "epsilon_selection": eps_text(privacy.get("epsilon_selection")),
            "selection_noise_multiplier": eps_text(privacy.get("selection_noise_multiplier")),
            "selection_releases": str(privacy.get("selection_releases")),
            "accountant": privacy.get("accountant"),
        },
    )


def remaining(session: Session, *, facts: DatasetFacts) -> float:
    """ε still available on the version's dataset (without locking; for messages)."""
    budget = session.get(PrivacyBudget, facts.dataset_id)
    if budget is None:
        return float(facts.epsilon_total)
    total = min(budget.epsilon_total, float(facts.epsilon_total))
    return max(0.0, total - budget.epsilon_reserved - budget.epsilon_charged)


def lock_and_check(session: Session, *, facts: DatasetFacts, epsilon: float) -> PrivacyBudget:
    """Lock the dataset's budget for this transaction and raise BudgetExceededError unless
    `epsilon` fits in what is left (nothing is reserved yet)."""
    budget = _lock(session, facts=facts)
    used = budget.epsilon_reserved + budget.epsilon_charged
    if used + epsilon > budget.epsilon_total + EPSILON_SLACK:
        raise BudgetExceededError(
            f"this job asks for ε = {eps_text(epsilon)} but dataset {facts.dataset_id} "
            f"(version {facts.version_id}) has only ε = {eps_text(budget.epsilon_remaining)} "
            f"left of its budget of {eps_text(budget.epsilon_total)} "
            f"({eps_text(budget.epsilon_charged)} spent, {eps_text(budget.epsilon_reserved)} "
            "reserved by queued jobs). The budget is dataset-wide: ε spent on any version "
            "of the dataset (earlier uploads, versions before an erasure) counts, because "
            "the same people are in them",
            dataset_id=facts.dataset_id,
            dataset_version_id=facts.version_id,
            budget_scope="dataset",
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
    _record(
        session,
        budget=budget,
        dataset_version_id=facts.version_id,
        job_id=job_id,
        project_id=facts.project_id,
        kind=BudgetEntryKind.reserve,
        epsilon=epsilon,
        actor=actor,
    )
    return budget


def _reservation(session: Session, job: TrainingJob) -> PrivacyBudgetEntry | None:
    return session.exec(
        select(PrivacyBudgetEntry).where(
            PrivacyBudgetEntry.job_id == job.id,
            PrivacyBudgetEntry.kind == BudgetEntryKind.reserve.value,
        )
    ).first()


def _locked_for_job(session: Session, reservation: PrivacyBudgetEntry) -> PrivacyBudget:
    if session.get(PrivacyBudget, reservation.dataset_id) is None:
        raise NotFoundError(f"no privacy budget for dataset {reservation.dataset_id}")
    return _locked(session, reservation.dataset_id)


def charge(session: Session, *, job: TrainingJob, actor: str | None) -> float:
    """Turn the job's reservation into spent ε (at start); returns the ε charged."""
    reservation = _reservation(session, job)
    if reservation is None:
        return 0.0
    return _settle(session, reservation, job=job, kind=BudgetEntryKind.charge, actor=actor)


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
    return _settle(session, reservation, job=job, kind=BudgetEntryKind.release, actor=actor)


def _settle(
    session: Session,
    reservation: PrivacyBudgetEntry,
    *,
    job: TrainingJob,
    kind: BudgetEntryKind,
    actor: str | None,
) -> float:
    """Turn a job's reservation into a charge (spent) or a release (returned): the reserved
    ε leaves the reservation either way, and only a charge adds to what was spent."""
    budget = _locked_for_job(session, reservation)
    epsilon = reservation.epsilon
    budget.epsilon_reserved = max(0.0, budget.epsilon_reserved - epsilon)
    if kind is BudgetEntryKind.charge:
        budget.epsilon_charged += epsilon
    _record(
        session,
        budget=budget,
        dataset_version_id=reservation.dataset_version_id,
        job_id=job.id,
        project_id=job.project_id,
        kind=kind,
        epsilon=epsilon,
        actor=actor,
    )
    return epsilon


def _dataset_of(session: Session, dataset_version_id: str) -> str | None:
    from privet.datasets.tables import DatasetVersion  # the datasets domain, read only

    version = session.get(DatasetVersion, dataset_version_id)
    if version is not None:
        return version.dataset_id
    entry = session.exec(
        select(PrivacyBudgetEntry).where(
            PrivacyBudgetEntry.dataset_version_id == dataset_version_id
        )
    ).first()
    return entry.dataset_id if entry is not None else None


def budget_status(
    session: Session, *, dataset_version_id: str | None = None, dataset_id: str | None = None
) -> PrivacyBudgetPublic | None:
    """The dataset-wide totals and full history, asked for by the dataset or by any of its
    versions (None before the dataset's first reservation)."""
    if dataset_id is None:
        if dataset_version_id is None:
            raise ValueError("give a dataset or a dataset version")
        dataset_id = _dataset_of(session, dataset_version_id)
        if dataset_id is None:
            return None
    budget = session.get(PrivacyBudget, dataset_id)
    if budget is None:
        return None
    entries = session.exec(
        select(PrivacyBudgetEntry)
        .where(PrivacyBudgetEntry.dataset_id == dataset_id)
        .order_by(col(PrivacyBudgetEntry.created_at), col(PrivacyBudgetEntry.id))
    ).all()
    charged_jobs = [e.job_id for e in entries if e.kind == BudgetEntryKind.charge.value]
    deltas = (
        session.exec(select(TrainingJob.delta).where(col(TrainingJob.id).in_(charged_jobs))).all()
        if charged_jobs
        else []
    )
    return PrivacyBudgetPublic(
        dataset_id=budget.dataset_id,
        dataset_version_id=dataset_version_id,
        project_id=budget.project_id,
        epsilon_total=budget.epsilon_total,
        delta=budget.delta,
        epsilon_reserved=budget.epsilon_reserved,
        epsilon_charged=budget.epsilon_charged,
        epsilon_remaining=budget.epsilon_remaining,
        delta_charged=float(sum(d for d in deltas if d is not None)),
        entries=[
            {
                "job_id": e.job_id,
                "dataset_version_id": e.dataset_version_id,
                "kind": e.kind,
                "epsilon": e.epsilon,
                "created_at": e.created_at.isoformat(),
                "ledger_entry_id": e.ledger_entry_id,
            }
            for e in entries
        ],
    )
