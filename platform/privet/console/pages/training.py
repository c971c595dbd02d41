"""Training: submit a job (the request's defaults shown; what is left empty the auto recipe
chooses, and the job page shows its choices and reasons), follow a job live (a partial
polled by htmx: step, loss, ε) with its loss and ε curves per step from the job history,
cancel it. Submission is the API's admission with the console's guard (a refusal is a
recorded job and ledger event, shown with its rule); reads and cancel call the API's
handlers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session

from privet.api.deps import Guard, RuntimeDep, SessionDep, project_resource
from privet.api.paging import AfterQuery
from privet.api.routes import jobs as api_jobs
from privet.auth.identity import Identity
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.console.listing import Listing, ListingDep
from privet.datasets import catalog
from privet.jobs import admission
from privet.jobs import service as jobs
from privet.jobs.schemas import TrainingJobCreate, TrainingJobHistoryPublic, TrainingJobPublic
from privet.kit.errors import InvalidInputError
from privet.policy.request import training_context
from privet.reports import charts
from privet.runtime import Runtime

router = APIRouter(prefix="/training", dependencies=[Depends(csrf_checked)])

#: The form's fields (empty = the request's default, or the auto recipe's choice).
FIELDS = (
    "dataset_version_id", "base_model", "model_name", "purpose", "target_epsilon", "delta",
    "epochs", "batch_size", "physical_batch_size", "learning_rate", "max_length", "strategy",
)  # fmt: skip
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RECENT_JOBS = 20
TRAINABLE = 50
"""Dataset versions the submit form offers, newest first."""
CLEAN_JOB = training_context(
    purpose="form",
    dataset_contains_personal_data=False,
    dataset_categories=(),
    dataset_purposes=("form",),
    dataset_epsilon_limit=1.0,
    dp=True,
    epsilon=1.0,
    base_model="form",
    base_model_allowlisted=True,
)
"""The submit form's question is the viewer's role: would a job every data rule accepts
be allowed. The request's own rules (purpose, ε, base model) are decided on submit."""


def _defaults() -> list[dict[str, Any]]:
    """Each field's default and what it means, from the request schema itself."""
    shown = []
    for name in FIELDS:
        info = TrainingJobCreate.model_fields[name]
        default = info.get_default(call_default_factory=True)
        shown.append(
            {
                "name": name,
                "default": "" if default is None else default,
                "required": info.is_required(),
                "help": info.description or "",
            }
        )
    return shown


def _versions(session: Session, guard: Guard, project_id: str) -> list[dict[str, Any]]:
    """The newest active dataset versions to train on, where the viewer may list
    datasets (the form's choice; an older version's id can be typed on the API)."""
    if not permits(also(guard, "dataset.list"), project_resource(project_id)):
        return []
    newest = catalog.newest_active(session, project_id=project_id, limit=TRAINABLE)
    return [{"dataset": d, "version": v} for d, v in newest]


def _projects(view: Listing) -> list[dict[str, Any]]:
    """Per project where the viewer may list jobs: a page of jobs, newest first, and the
    form's dataset versions (the next page of one project: that project only)."""
    shown: list[dict[str, Any]] = []
    for project, after in view.project_pages("training_job.list"):
        recent = jobs.list_jobs(
            view.session, project_id=project.id, state=None, after=after, limit=RECENT_JOBS
        )
        shown.append(
            {
                "project": project,
                "jobs": recent.items,
                "next_link": view.next_link(recent.next, project=project.id),
                "versions": _versions(view.session, view.guard, project.id),
                "may_submit": permits(
                    also(view.guard, "training_job.submit"), project_resource(project.id), CLEAN_JOB
                ),
            }
        )
    return shown


@router.get("", response_class=HTMLResponse)
def training(
    view: ListingDep,
    project: Annotated[str | None, Query(max_length=40)] = None,
    after: AfterQuery = None,
) -> HTMLResponse:
    """Per project where the viewer may list jobs: recent jobs (keyset pages: ``project``
    and ``after`` show one project's older jobs) and the submit form."""
    context = {"title": "Training", "projects": _projects(view), "fields": _defaults()}
    return render(view.request, "training.html", context)


class JobForm(BaseModel):
    """The submit form as posted: text, bounded; `_request` turns it into the request."""

    model_config = ConfigDict(extra="ignore")

    dataset_version_id: str = Field(default="", max_length=40)
    base_model: str = Field(default="", max_length=100)
    model_name: str = Field(default="", max_length=100)
    purpose: str = Field(default="", max_length=64)
    private: str = Field(default="", max_length=8)
    target_epsilon: str = Field(default="", max_length=32)
    delta: str = Field(default="", max_length=32)
    epochs: str = Field(default="", max_length=32)
    batch_size: str = Field(default="", max_length=32)
    physical_batch_size: str = Field(default="", max_length=32)
    learning_rate: str = Field(default="", max_length=32)
    max_length: str = Field(default="", max_length=32)
    strategy: str = Field(default="", max_length=32)


def _request(form: JobForm) -> TrainingJobCreate:
    """The form as a training request; empty fields are left out (defaults, auto recipe)."""
    raw: dict[str, Any] = {k: v.strip() for k, v in form.model_dump().items() if v.strip()}
    raw["private"] = raw.get("private") == "on"
    try:
        return TrainingJobCreate.model_validate(raw)
    except ValidationError as exc:
        errors = [f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors()]
        raise InvalidInputError(
            "the training request was not accepted: " + "; ".join(errors)
        ) from None


@router.post("/{project_id}/submit", response_model=None)
def submit(
    request: Request,
    project_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("training_job.submit")],
    form: Annotated[JobForm, Form()],
) -> Response:
    """Admission as on the API; a refusal (policy or budget) is recorded, then shown."""
    outcome = api_jobs.admit_job(
        project_id=project_id, body=_request(form), session=session, identity=viewer, guard=guard
    )
    if isinstance(outcome, admission.Refused):
        error = outcome.error
        title = "Refused" if error.status != 403 else "Not allowed"
        context = {"title": title, "error": error}
        return render(request, "error.html", context, status_code=error.status)
    return RedirectResponse(f"/training/{project_id}/{outcome.job.id}", status_code=303)


def _job(
    session: Session, viewer: Identity, runtime: Runtime, guard: Guard, project_id: str, job_id: str
) -> dict[str, Any]:
    """The job (the API's read, with its failure text) and its curves once it has ended."""
    job: TrainingJobPublic = api_jobs.get_job(
        project_id=project_id,
        job_id=job_id,
        session=session,
        identity=viewer,
        guard=guard,
        runtime=runtime,
    )
    done = job.state in TERMINAL
    # cancel's rule reads the job's submitter: decided on the job's own resource
    may_cancel = not done and permits(
        also(guard, "training_job.cancel"),
        api_jobs.job_resource(jobs.get_job(session, project_id=project_id, job_id=job_id)),
    )
    history: TrainingJobHistoryPublic | None = None
    if done:
        history = api_jobs.get_job_history(
            project_id=project_id,
            job_id=job_id,
            session=session,
            identity=viewer,
            guard=also(guard, "training_job.read"),
        )
    return {"job": job, "done": done, "may_cancel": may_cancel, "curves": _curves(history)}


def _curves(history: TrainingJobHistoryPublic | None) -> list[tuple[str, Markup]]:
    """Loss and ε per step, as server-drawn SVG (every text in it escaped by charts)."""
    if history is None or not history.points:
        return []
    loss = [(float(p.step), p.loss) for p in history.points if p.loss is not None]
    eps = [(float(p.step), p.epsilon) for p in history.points if p.epsilon is not None]
    wanted = [("Training loss per step", loss, "loss"), ("ε per step", eps, "ε spent")]
    # charts escapes every text it draws: the SVG is safe to embed as markup
    return [
        (title, Markup(charts.line_chart(title, points, x_label="step", y_label=unit)))  # noqa: S704
        for title, points, unit in wanted
        if points
    ]


@router.get("/{project_id}/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    project_id: str,
    job_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("training_job.read")],
) -> HTMLResponse:
    """One job: its request, the recipe's choices, live progress (polled), curves."""
    context = _job(session, viewer, runtime, guard, project_id, job_id)
    template = (
        "training_progress.html" if request.headers.get("hx-request") else "training_job.html"
    )
    return render(request, template, {"title": f"Training job {job_id}", **context})


@router.post("/{project_id}/{job_id}/cancel")
def cancel(
    project_id: str,
    job_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("training_job.cancel")],
) -> RedirectResponse:
    """Queued: its ε reservation is released; running: stopped within seconds."""
    api_jobs.cancel_job(
        project_id=project_id, job_id=job_id, session=session, identity=viewer, guard=guard
    )
    return RedirectResponse(f"/training/{project_id}/{job_id}", status_code=303)
