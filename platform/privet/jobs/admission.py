"""One admission flow for a training request: prepare, policy, budget, submit.

The gateway's route and an erasure's retraining (privet.compliance.flows) both call
`admit`, so a request is admitted, and a refusal recorded, the same way whoever asks.
The policy decision comes in as an `Authorize` callable: this package knows nothing of
the gateway's guard, only what it decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

from sqlmodel import Session

from privet.auth.identity import Identity
from privet.jobs import budget, distill, warmstart
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.service import prepare_submission, record_refusal, submit
from privet.jobs.sources import DatasetSource
from privet.jobs.tables import TrainingJob
from privet.kit.errors import ForbiddenError, PrivetError
from privet.models.tables import ModelVersion


@dataclass(frozen=True)
class PolicyVerdict:
    """The policy decision on ``training_job.submit``, as recorded by the caller."""

    allowed: bool
    policies: list[str] = field(default_factory=list)
    policy_version: str | None = None
    #: the denial's own text (which rule refused and why); empty when the caller has none
    detail: str = ""


class Authorize(Protocol):
    """Decide ``training_job.submit`` on ``project_id`` for ``identity`` over the policy
    context the admission built, recording the decision in the ledger."""

    def __call__(
        self, identity: Identity, project_id: str, context: dict[str, Any]
    ) -> PolicyVerdict: ...


class MayRead(Protocol):
    """Decide ``model_version.read`` on the version a warm start trains from, for
    ``identity``, recording the decision in the ledger."""

    def __call__(self, identity: Identity, version: ModelVersion) -> PolicyVerdict: ...


class TrainingRefusedByPolicyError(ForbiddenError):
    slug = "training-refused-by-policy"
    title = "Training request refused by policy"


@dataclass(frozen=True)
class Admitted:
    job: TrainingJob


@dataclass(frozen=True)
class Refused:
    """A refused request: its ledgered job id, why, and the problem to answer with
    (its extensions carry ``refused_job_id``)."""

    job_id: str
    reason: Literal["policy", "privacy_budget_exceeded"]
    policies: list[str]
    error: PrivetError


def admit(
    session: Session,
    *,
    project_id: str,
    data: TrainingJobCreate,
    actor: Identity,
    authorize: Authorize,
    source: DatasetSource | None = None,
    may_read: MayRead | None = None,
) -> Admitted | Refused:
    """Admit a training request in ``session``'s transaction: policy decides on the
    dataset's declarations, then the job's ε is reserved against the dataset version's
    privacy budget. A refusal is returned (not raised) so that its ledger events commit
    with the decision; nothing trains.

    A warm start (``init_from_model_version_id``) or a distillation
    (``distill_from_model_version_id``) is refused unless ``may_read`` allows the caller
    to read that version (without it: refused). Raises what `prepare_submission`,
    `warmstart.check_compatible` and `distill`'s checks raise for a request that cannot
    be decided on."""
    parent = warmstart.find_parent(session, project_id=project_id, data=data)
    if parent is not None:
        data = warmstart.inherit_base_model(data, parent)
    teacher = distill.find_teacher(session, project_id=project_id, data=data)
    if teacher is not None and data.class_balance == "auto":
        # the student learns the teacher's distributions: the texts' labels mean nothing
        data = data.model_copy(update={"class_balance": "none"})
    admission = prepare_submission(session, project_id=project_id, data=data, source=source)
    if teacher is not None:
        distill.check_data(admission.facts)
    refuse = partial(
        record_refusal,
        session,
        project_id=project_id,
        data=data,
        admission=admission,
        actor=actor,
    )
    verdict = authorize(actor, project_id, dict(admission.context))
    if not verdict.allowed:
        job_id = refuse(reason="policy", policies=verdict.policies)
        return _policy_refusal(job_id, verdict, verdict.detail or "training request refused")
    unreadable = _unreadable(
        actor, may_read, ((parent, "warm start from"), (teacher, "distillation of"))
    )
    if unreadable is not None:
        read, what = unreadable
        job_id = refuse(reason="policy", policies=read.policies)
        return _policy_refusal(job_id, read, what)
    if parent is not None:
        warmstart.check_compatible(
            session, parent, data=data, facts=admission.facts, purpose=admission.purpose
        )
    if teacher is not None:
        distill.check_teacher(session, teacher, purpose=admission.purpose)
    try:
        job = submit(
            session,
            project_id=project_id,
            data=data,
            admission=admission,
            actor=actor,
            policies=verdict.policies,
            policy_version=verdict.policy_version,
        )
    except budget.BudgetExceededError as exc:
        job_id = refuse(reason="privacy_budget_exceeded")
        over = budget.BudgetExceededError(exc.detail, refused_job_id=job_id, **exc.extensions)
        return Refused(job_id=job_id, reason="privacy_budget_exceeded", policies=[], error=over)
    return Admitted(job=job)


def _unreadable(
    actor: Identity,
    may_read: MayRead | None,
    versions: tuple[tuple[ModelVersion | None, str], ...],
) -> tuple[PolicyVerdict, str] | None:
    """The refusal for the first given version the caller may not read (a warm start's
    parent, a teacher), checked before anything about it: a caller who may not read it
    learns nothing of its state, labels or purposes."""
    for version, what in versions:
        if version is None:
            continue
        read = (
            may_read(actor, version)
            if may_read is not None
            else PolicyVerdict(allowed=False, detail="no decision on reading it was made")
        )
        if not read.allowed:
            return read, (
                f"{what} model version {version.id} refused: the caller may not "
                f"read it (model_version.read): {read.detail or 'denied'}"
            )
    return None


def _policy_refusal(job_id: str, verdict: PolicyVerdict, what: str) -> Refused:
    refused_by = ", ".join(verdict.policies) or "default deny"
    error = TrainingRefusedByPolicyError(
        f"{what}: refused by {refused_by}", policies=verdict.policies, refused_job_id=job_id
    )
    return Refused(job_id=job_id, reason="policy", policies=verdict.policies, error=error)
