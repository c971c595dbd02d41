"""Training jobs: submit (policy admission + privacy-budget reservation), list, read, cancel,
and the training history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlmodel import Session

from privet.api import problems
from privet.api.deps import (
    Guard,
    IdentityDep,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    row_resource,
)
from privet.api.paging import NEXT_LINK, AfterQuery, LimitQuery, link_next
from privet.api.routes.models import version_resource
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.jobs import admission, errortext, history, service
from privet.jobs.admission import Authorize, MayRead, PolicyVerdict
from privet.jobs.schemas import TrainingJobCreate, TrainingJobHistoryPublic, TrainingJobPublic
from privet.jobs.tables import TrainingJob
from privet.kit.errors import ForbiddenError
from privet.models.tables import ModelVersion

router = APIRouter(
    route_class=OneHopRoute,
    prefix="/v1/projects/{project_id}/training-jobs",
    tags=["training jobs"],
)


def job_resource(job: TrainingJob) -> Resource:
    return row_resource(
        "TrainingJob", job, {"project": job.project_id, "submitted_by": job.submitted_by}
    )


def _verdict(guard: Guard, *, allowed: bool, detail: str = "") -> PolicyVerdict:
    """The guard's last recorded decision; ``detail``: a denial's text."""
    decision = dict(guard.recorded[-1].details or {}) if guard.recorded else {}
    return PolicyVerdict(
        allowed=allowed,
        policies=list(decision.get("policies") or []),
        policy_version=decision.get("policy_version"),
        detail=detail,
    )


def _policy_of(guard: Guard) -> Authorize:
    """The route's guard as the admission's policy check: the decision is the guard's
    (recorded like every other), on the project, for the guard's caller."""

    def authorize(identity: Identity, project_id: str, context: dict[str, Any]) -> PolicyVerdict:
        resource = Resource(type="Project", id=project_id, project_id=project_id)
        try:
            guard.check(resource, context)
        except ForbiddenError as exc:
            return _verdict(guard, allowed=False, detail=exc.detail)
        return _verdict(guard, allowed=True)

    return authorize


def _may_read_of(guard: Guard) -> MayRead:
    """`model_version.read` on a warm start's version, decided and recorded like the
    route's own decision, for the same caller."""

    def may_read(identity: Identity, version: ModelVersion) -> PolicyVerdict:
        reader = Guard(
            action="model_version.read",
            identity=identity,
            runtime=guard.runtime,
            session=guard.session,
            recorded=guard.recorded,
            decisions=guard.decisions,
        )
        try:
            reader.check(version_resource(version))
        except ForbiddenError as exc:
            return _verdict(reader, allowed=False, detail=exc.detail)
        return _verdict(reader, allowed=True)

    return may_read


def admit_job(
    *,
    project_id: str,
    body: TrainingJobCreate,
    session: Session,
    identity: Identity,
    guard: Guard,
) -> admission.Admitted | admission.Refused:
    """Admission with the guard as its policy check (the API's and the console's submit):
    a refusal is a recorded job and ledger event, so the caller answers it and commits."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    return admission.admit(
        session,
        project_id=project.id,
        data=body,
        actor=identity,
        authorize=_policy_of(guard),
        may_read=_may_read_of(guard),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TrainingJobPublic,
    responses={403: {"description": "refused by policy"}, 409: {"description": "over budget"}},
)
def submit_job(
    project_id: str,
    body: TrainingJobCreate,
    request: Request,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.submit")],
) -> Any:
    """Admit a training request: policy decides on the dataset's declarations, then the
    job's ε is reserved against the dataset version's privacy budget. A refusal is
    recorded in the ledger and answered with a problem response; nothing trains."""
    outcome = admit_job(
        project_id=project_id, body=body, session=session, identity=identity, guard=guard
    )
    if isinstance(outcome, admission.Refused):
        error = outcome.error
        return problems.error_problem(request, error)
    return TrainingJobPublic.model_validate(outcome.job)


@router.get("", response_model=list[TrainingJobPublic], responses=NEXT_LINK)
def list_jobs(
    project_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.list")],
    state: Annotated[
        str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")
    ] = None,
    after: AfterQuery = None,
    limit: LimitQuery = 100,
) -> list[TrainingJobPublic]:
    """A page of the project's jobs, newest first; the next page is in the Link header."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    page = service.list_jobs(session, project_id=project.id, state=state, after=after, limit=limit)
    link_next(request, response, page.next)
    return [TrainingJobPublic.model_validate(j) for j in page.items]


@router.get("/{job_id}", response_model=TrainingJobPublic)
def get_job(
    project_id: str,
    job_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.read")],
    runtime: RuntimeDep,
) -> TrainingJobPublic:
    """One job, with its failure's own text (``error_detail``, unsealed for this reader)."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    job = service.get_job(session, project_id=project.id, job_id=job_id)
    guard.check(job_resource(job))
    public = TrainingJobPublic.model_validate(job)
    public.error_detail = errortext.error_detail(session, provider=runtime.key_provider, job=job)
    return public


@router.get("/{job_id}/history", response_model=TrainingJobHistoryPublic)
def get_job_history(
    project_id: str,
    job_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.read")],
) -> TrainingJobHistoryPublic:
    """The job's training curve (loss and ε at evenly spaced steps, at most 1,000 points,
    and a summary per epoch), stored when the job ends; its readers are the job's."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    job = service.get_job(session, project_id=project.id, job_id=job_id)
    guard.check(job_resource(job))
    return history.history_public(session, job=job)


@router.post("/{job_id}:cancel", response_model=TrainingJobPublic)
def cancel_job(
    project_id: str,
    job_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.cancel")],
) -> TrainingJobPublic:
    """Cancel a queued job (its ε reservation is released) or stop a running one within
    seconds (its ε stays charged)."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    job = service.get_job(session, project_id=project.id, job_id=job_id)
    guard.check(job_resource(job))
    return TrainingJobPublic.model_validate(service.cancel(session, job=job, actor=identity))
