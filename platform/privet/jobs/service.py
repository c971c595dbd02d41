"""Training-job service functions: admission steps, submission, listing, cancellation.

`privet.jobs.admission.admit` runs the steps in order: `prepare_submission` (facts for
the policy decision), the caller's policy check, then `submit` (job row, ledger events
and the budget reservation, in the caller's transaction) or `record_refusal` when policy
or the budget said no. Workers use privet.jobs.queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from privet import ledger
from privet.auth.identity import Identity
from privet.basemodels.service import is_admissible
from privet.db import get_in_project
from privet.executors.settings import get_executor_settings
from privet.jobs import budget, distill, recipes
from privet.jobs.catalog import ensure_catalog
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.sources import DatasetFacts, DatasetSource, get_dataset_source
from privet.jobs.tables import JobState, TrainingJob
from privet.kit.errors import ConflictError, InvalidInputError
from privet.kit.ids import new_id, utcnow
from privet.kit.paging import Keyset, Page
from privet.policy.request import training_context
from privet.training.accounting import reservation_amount

_PRINCIPAL_TYPES = {"user": "User", "service_account": "ServiceAccount"}


def principal_ref(identity: Identity) -> str:
    """`<Type>:<id>`, the form policies compare with `submitted_by`."""
    return f"{_PRINCIPAL_TYPES[identity.kind]}:{identity.principal_id}"


@dataclass(frozen=True)
class Admission:
    """What the policy decides on, computed before the decision."""

    facts: DatasetFacts
    purpose: str
    delta: float | None
    base_model_allowlisted: bool
    context: dict[str, Any]


def prepare_submission(
    session: Session,
    *,
    project_id: str,
    data: TrainingJobCreate,
    source: DatasetSource | None = None,
) -> Admission:
    """Load the dataset version's declarations and build the policy context.

    Raises NotFoundError for a version outside the project, ConflictError for a shredded
    version, InvalidInputError when the purpose cannot be inferred, δ is too large, or the
    version is unlabelled and the job is not a distillation."""
    recipes.check_selection_executor(data)
    source = source or get_dataset_source()
    facts = source.facts(session, project_id=project_id, version_id=data.dataset_version_id)
    if not facts.active:
        raise ConflictError(
            f"dataset version {facts.version_id} is no longer available (erased or expired)"
        )
    distill.check_labelled(facts, data)
    if data.purpose is not None:
        purpose = data.purpose
    elif len(facts.purposes) == 1:
        purpose = facts.purposes[0]
    else:
        raise InvalidInputError(
            f"say which purpose this model serves: the dataset declares {list(facts.purposes)}",
            field="purpose",
        )
    delta = None
    if data.private:
        delta = data.delta if data.delta is not None else facts.delta
        if delta > facts.delta:
            raise InvalidInputError(
                f"δ = {delta:g} is above the dataset version's declared δ = {facts.delta:g}",
                field="delta",
            )
    if facts.train_rows is not None:
        _check_config(data, delta=delta, facts=facts)
    allowlisted = is_admissible(
        session, name=data.base_model, legacy=lambda: ensure_catalog().names()
    )
    context = training_context(
        purpose=purpose,
        dataset_contains_personal_data=facts.contains_personal_data,
        dataset_categories=facts.categories,
        dataset_purposes=facts.purposes,
        dataset_epsilon_limit=facts.epsilon_total,
        dp=data.private,
        epsilon=data.target_epsilon,
        base_model=data.base_model,
        base_model_allowlisted=allowlisted,
    )
    return Admission(
        facts=facts,
        purpose=purpose,
        delta=delta,
        base_model_allowlisted=allowlisted,
        context=context,
    )


def _check_config(data: TrainingJobCreate, *, delta: float | None, facts: DatasetFacts) -> None:
    """Refuse at admission what the trainer would refuse after the ε was charged."""
    from privet.training.config import ConfigError  # torch: at admission only

    assert facts.train_rows is not None
    try:
        params, record = recipes.resolve(data, facts=facts, delta=delta)
        config = recipes.config_from_params(
            params,
            base_model=data.base_model,
            private=data.private,
            target_epsilon=data.target_epsilon,
            delta=delta,
            contains_personal_data=False,  # whether DP is required is the policy's decision
            class_weights=recipes.recorded_class_weights(record),
            logit_adjustment=recipes.recorded_logit_adjustment(record),
        )
    except (ConfigError, ValueError) as exc:
        raise InvalidInputError(f"this training request cannot run: {exc}") from exc
    try:
        config.validate(facts.train_rows)
    except (ConfigError, ValueError) as exc:
        raise InvalidInputError(f"this training request cannot run: {exc}") from exc
    if data.workers is not None:
        limit = get_executor_settings().ray_max_workers
        if data.workers > limit:
            raise InvalidInputError(
                f"workers must be at most {limit} (PRIVET_RAY_MAX_WORKERS), got {data.workers}"
            )
        if data.workers > facts.train_rows:
            raise InvalidInputError(
                f"workers ({data.workers}) must not exceed the training rows ({facts.train_rows})"
            )


def _submitted_event(
    session: Session,
    *,
    job_id: str,
    project_id: str,
    data: TrainingJobCreate,
    facts: DatasetFacts,
    purpose: str,
    actor: Identity,
) -> None:
    objects = {"training_job": job_id, "dataset_version": facts.version_id}
    if data.init_from_model_version_id is not None:  # a warm start: the version it starts from
        objects["init_model_version"] = data.init_from_model_version_id
    if data.distill_from_model_version_id is not None:  # a student: the teacher it distils
        objects["teacher_model_version"] = data.distill_from_model_version_id
    ledger.emit(
        session,
        type="training_job.submitted",
        actor=actor.principal_id,
        project=project_id,
        objects=objects,
        digests={"dataset_version": facts.digest} if facts.digest.startswith("sha256:") else None,
        details={
            "base_model": data.base_model,
            "purpose": purpose,
            "private": data.private,
            "target_epsilon": budget.eps_text(data.target_epsilon),
            "strategy": data.strategy,
            "epochs": data.epochs,
        },
    )


def record_refusal(
    session: Session,
    *,
    project_id: str,
    data: TrainingJobCreate,
    admission: Admission,
    actor: Identity,
    reason: str,
    policies: Sequence[str] = (),
    job_id: str | None = None,
) -> str:
    """Ledger a refused submission (no job row is created); returns the refused job id."""
    job_id = job_id or new_id("job")
    _submitted_event(
        session,
        job_id=job_id,
        project_id=project_id,
        data=data,
        facts=admission.facts,
        purpose=admission.purpose,
        actor=actor,
    )
    ledger.emit(
        session,
        type="training_job.refused",
        actor=actor.principal_id,
        project=project_id,
        objects={"training_job": job_id, "dataset_version": admission.facts.version_id},
        outcome="deny",
        details={"reason": reason, "policies": list(policies)},
    )
    return job_id


def submit(
    session: Session,
    *,
    project_id: str,
    data: TrainingJobCreate,
    admission: Admission,
    actor: Identity,
    policies: Sequence[str] = (),
    policy_version: str | None = None,
) -> TrainingJob:
    """Create the queued job and reserve its ε, or raise BudgetExceededError.

    On BudgetExceededError nothing of the job is written; the caller records the refusal
    (`record_refusal`) in the same transaction and answers with a problem response."""
    facts = admission.facts
    job_id = new_id("job")
    reserve = (
        reservation_amount(data.target_epsilon)
        if data.private and data.target_epsilon is not None
        else None
    )
    if reserve is not None:
        # Lock the budget row and check first, so a refusal leaves nothing of the job
        # written and no concurrent request can take the same ε in between.
        budget.lock_and_check(session, facts=facts, epsilon=reserve)
    params, recipe = recipes.resolve(data, facts=facts, delta=admission.delta)
    job = TrainingJob(
        id=job_id,
        project_id=project_id,
        dataset_version_id=facts.version_id,
        dataset_id=facts.dataset_id or None,
        dataset_digest=facts.digest or None,
        model_name=data.model_name or (f"{facts.name}-classifier" if facts.name else "classifier"),
        base_model=data.base_model,
        purpose=admission.purpose,
        private=data.private,
        target_epsilon=data.target_epsilon,
        delta=admission.delta,
        params=params,
        recipe=recipe,
        state=JobState.queued.value,
        submitted_by=principal_ref(actor),
        submitted_by_id=actor.principal_id,
        created_at=utcnow(),
        progress={},
        epsilon_reserved=reserve,
        init_from_model_version_id=data.init_from_model_version_id,
    )
    _submitted_event(
        session,
        job_id=job_id,
        project_id=project_id,
        data=data,
        facts=facts,
        purpose=admission.purpose,
        actor=actor,
    )
    ledger.emit(
        session,
        type="training_job.admitted",
        actor=actor.principal_id,
        project=project_id,
        objects={"training_job": job_id, "dataset_version": facts.version_id},
        outcome="allow",
        details={"policies": list(policies), "policy_version": policy_version},
    )
    session.add(job)
    session.flush()
    if reserve is not None:
        budget.check_and_reserve(
            session, facts=facts, job_id=job_id, epsilon=reserve, actor=actor.principal_id
        )
    get_dataset_source().record_usage(
        session, version_id=facts.version_id, kind="training_job", used_by_id=job_id
    )
    return job


JOB_ORDER = Keyset(
    columns=(col(TrainingJob.created_at), col(TrainingJob.id)),
    kinds=(datetime, str),
    descending=True,
)
"""Jobs list newest first; (created_at, id) is the keyset (indexes of migration 0017)."""


def jobs_statement(
    *, project_id: str, state: str | None = None, after: str | None = None, limit: int = 100
) -> SelectOfScalar[TrainingJob]:
    """The page query of ``list_jobs`` (the plan tests EXPLAIN it)."""
    query = select(TrainingJob).where(TrainingJob.project_id == project_id)
    if state:
        query = query.where(TrainingJob.state == state)
    return JOB_ORDER.page(query, after=after, limit=limit)


def list_jobs(
    session: Session,
    *,
    project_id: str,
    state: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> Page[TrainingJob]:
    """A page of the project's jobs, newest first, from the cursor ``after``."""
    stmt = jobs_statement(project_id=project_id, state=state, after=after, limit=limit)
    rows = session.exec(stmt).all()
    return JOB_ORDER.split(rows, limit=limit, key=lambda j: (j.created_at, j.id))


def get_job(session: Session, *, project_id: str, job_id: str) -> TrainingJob:
    """The job, or NotFoundError when it is not in `project_id`."""
    return get_in_project(session, TrainingJob, job_id, project_id=project_id, what="training job")


def cancel(session: Session, *, job: TrainingJob, actor: Identity) -> TrainingJob:
    """Cancel a queued job at once (its reservation is released) or ask its worker to stop
    a running one (its ε stays charged); a finished job is a conflict."""
    locked = session.exec(
        select(TrainingJob)
        .where(TrainingJob.id == job.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    state = JobState(locked.state)
    if state == JobState.queued:
        now = utcnow()
        locked.state = JobState.cancelled.value
        locked.finished_at = now
        locked.cancel_requested_at = now
        locked.reason = "cancelled before it started"
        session.add(locked)
        budget.release(session, job=locked, actor=actor.principal_id)
        ledger.emit(
            session,
            type="training_job.cancelled",
            actor=actor.principal_id,
            project=locked.project_id,
            objects={"training_job": locked.id},
            details={"from_state": "queued", "epsilon_charged": False},
        )
    elif state == JobState.running:
        if locked.cancel_requested_at is None:
            locked.cancel_requested_at = utcnow()
            session.add(locked)
            ledger.emit(
                session,
                type="training_job.cancel_requested",
                actor=actor.principal_id,
                project=locked.project_id,
                objects={"training_job": locked.id},
            )
    else:
        raise ConflictError(f"training job {locked.id} already {locked.state}", state=locked.state)
    return locked
