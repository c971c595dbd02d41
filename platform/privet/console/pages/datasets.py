"""Datasets: upload with declarations (streamed through the API's own upload pipeline, a
progress bar fed by htmx), each version's counts, split, PII scan, privacy budget and the
models trained on it; erase data subjects. Every action calls the API's own handler (or
its pipeline) with the console's guard: same Cedar decision, refusal and ledger event.

The upload is posted by htmx only: its CSRF token travels in the X-CSRF-Token header, so
the body is never read before the pipeline streams it (no spooling, bounded memory)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from privet.api.deps import Guard, RuntimeDep, SessionDep, project_resource
from privet.api.routes import datasets as api_datasets
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.auth import web_sessions
from privet.auth.identity import Identity
from privet.console.deps import (
    COOKIE,
    CSRF_HEADER,
    CsrfError,
    ViewerDep,
    also,
    csrf_checked,
    page,
    permits,
    render,
)
from privet.datasets import catalog, pii, usage
from privet.datasets.schemas import EraseSubjectsRequest
from privet.datasets.tables import LegalBasis
from privet.datasets.upload import open_form_upload
from privet.jobs import budget
from privet.kit.errors import InvalidInputError

router = APIRouter(prefix="/datasets")

MAX_SUBJECTS = 10_000


async def csrf_header_checked(request: Request) -> None:
    """The upload's CSRF check reads the header only: reading the form would consume the
    body the pipeline streams."""
    token = request.cookies.get(COOKIE)
    if token is None or not web_sessions.csrf_matches(token, request.headers.get(CSRF_HEADER)):
        raise CsrfError(
            "refused by the console's CSRF check: an upload must carry the session's token "
            "in the X-CSRF-Token header (the page's upload form sends it; reload the page)"
        )


def _versions(session: Session, dataset_id: str) -> list[dict[str, Any]]:
    """Each version with its PII-scan sentence, budget and the artifacts trained on it."""
    rows = catalog.list_versions(session, dataset_id=dataset_id)
    used = usage.usages_of(session, dataset_version_ids=[v.id for v in rows])
    shown = []
    for version in rows:
        shown.append(
            {
                "v": version,
                "pii": pii.findings(version.pii_scan),
                "used_by": [u for u in used if u.dataset_version_id == version.id],
            }
        )
    return shown


def _projects(session: Session, guard: Guard, viewer: Identity) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    for project in auth_service.list_projects(session, viewer=viewer):
        if not permits(also(guard, "dataset.list"), project_resource(project.id)):
            continue
        datasets = [
            {
                "d": d,
                "versions": _versions(session, d.id),
                "budget": budget.budget_status(session, dataset_id=d.id),
            }
            for d in catalog.list_datasets(session, project_id=project.id)
        ]
        shown.append({"project": project, "datasets": datasets})
    return shown


@router.get("", response_class=HTMLResponse, dependencies=[Depends(csrf_checked)])
def list_datasets(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
    uploaded: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    """Per project the viewer may list datasets in (`dataset.list`): datasets, versions.
    ``uploaded``: the version just registered (named in a status line)."""
    guard.check(PLATFORM)
    context = {
        "title": "Datasets",
        "uploaded": uploaded,
        "projects": _projects(session, guard, viewer),
        "legal_bases": [b.value for b in LegalBasis],
    }
    return render(request, "datasets.html", context)


@router.post("/{project_id}/upload", dependencies=[Depends(csrf_header_checked)])
def upload(
    request: Request,
    project_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("dataset.upload")],
) -> Response:
    """Stream the form through the API's upload pipeline; htmx then loads the page."""
    result = api_datasets.stream_upload(
        api_datasets.UploadCall(request=request, session=session, identity=viewer, runtime=runtime),
        guard,
        project_id=project_id,
        dataset_id=None,
        opener=open_form_upload,
    )
    target = f"/datasets?uploaded={result.id}#ds-{result.dataset_id}"
    return Response(status_code=204, headers={"HX-Redirect": target})


@router.post("/{project_id}/{dataset_id}/erase", dependencies=[Depends(csrf_checked)])
def erase(
    project_id: str,
    dataset_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("dataset.erase_subjects")],
    subject_ids: Annotated[str, Form(min_length=1, max_length=MAX_SUBJECTS * 201)],
) -> RedirectResponse:
    """One subject id per line; the API's erasure (new version, old ones shredded)."""
    ids = [line.strip() for line in subject_ids.splitlines() if line.strip()]
    try:
        body = EraseSubjectsRequest(subject_ids=ids)
    except ValidationError:
        raise InvalidInputError(
            f"give 1 to {MAX_SUBJECTS} subject ids, one per line, each at most 200 characters",
            given=len(ids),
        ) from None
    api_datasets.erase_subjects(
        project_id=project_id,
        dataset_id=dataset_id,
        body=body,
        session=session,
        identity=viewer,
        runtime=runtime,
        guard=guard,
    )
    return RedirectResponse(f"/datasets#ds-{dataset_id}", status_code=303)
