"""Training jobs: submit (policy admission + privacy-budget reservation), list, read, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from privet.api import problems
from privet.api.deps import Guard, IdentityDep, QueryInt, Resource, RuntimeDep, SessionDep, action
from privet.auth import service as auth_service
from privet.jobs import budget as budget_service
from privet.jobs import errortext, service
from privet.jobs.tables import TrainingJob, TrainingJobCreate, TrainingJobPublic
from privet.kit.errors import ForbiddenError

router = APIRouter(prefix="/v1/projects/{project_id}/training-jobs", tags=["training jobs"])


def job_resource(job: TrainingJob) -> Resource:
    return Resource(
        type="TrainingJob",
        id=job.id,
        project_id=job.project_id,
        attrs={"project": job.project_id, "submitted_by": job.submitted_by},
    )


def _last_decision(guard: Guard) -> dict[str, Any]:
    if guard.recorded:
        return dict(guard.recorded[-1].details or {})
    return {}


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
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    admission = service.prepare_submission(session, project_id=project.id, data=body)
    resource = Resource(type="Project", id=project.id, project_id=project.id)
    try:
        guard.check(resource, dict(admission.context))
    except ForbiddenError as exc:
        decision = _last_decision(guard)
        policies = list(decision.get("policies") or [])
        job_id = service.record_refusal(
            session,
            project_id=project.id,
            data=body,
            admission=admission,
            actor=identity,
            reason="policy",
            policies=policies,
        )
        return problems.problem(
            request,
            status=exc.status,
            slug="training-refused-by-policy",
            title="Training request refused by policy",
            detail=f"{exc.detail}: refused by {', '.join(policies) or 'default deny'}",
            policies=policies,
            refused_job_id=job_id,
        )
    decision = _last_decision(guard)
    try:
        job = service.submit(
            session,
            project_id=project.id,
            data=body,
            admission=admission,
            actor=identity,
            policies=list(decision.get("policies") or []),
            policy_version=decision.get("policy_version"),
        )
    except budget_service.BudgetExceededError as exc:
        job_id = service.record_refusal(
            session,
            project_id=project.id,
            data=body,
            admission=admission,
            actor=identity,
            reason="privacy_budget_exceeded",
        )
        return problems.problem(
            request,
            status=exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            refused_job_id=job_id,
            **exc.extensions,
        )
    return TrainingJobPublic.model_validate(job)


@router.get("", response_model=list[TrainingJobPublic])
def list_jobs(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("training_job.list")],
    state: Annotated[
        str | None, Query(pattern="^(queued|running|succeeded|failed|cancelled)$")
    ] = None,
    limit: Annotated[QueryInt, Query(ge=1, le=1000)] = 100,
) -> list[TrainingJobPublic]:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    jobs = service.list_jobs(session, project_id=project.id, state=state, limit=limit)
    return [TrainingJobPublic.model_validate(j) for j in jobs]


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
