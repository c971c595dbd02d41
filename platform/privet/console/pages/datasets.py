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
from privet.api.paging import AfterQuery
from privet.api.routes import datasets as api_datasets
from privet.auth import web_sessions
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
from privet.console.listing import Listing, ListingDep
from privet.datasets import catalog, pii, usage
from privet.datasets.schemas import EraseSubjectsRequest
from privet.datasets.tables import Dataset, LegalBasis
from privet.datasets.upload import open_form_upload
from privet.jobs import budget
from privet.kit.errors import InvalidInputError
from privet.kit.paging import Page
from privet.policy.request import upload_context

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


PAGE = 20
CLEAN_UPLOAD = upload_context(contains_personal_data=False, pii_suspected=False)
"""The upload form's question is the viewer's role: would an upload the data rules
accept be allowed. The declarations' own rules are decided on submit, as on the API."""


def _datasets(session: Session, page_of: Page[Dataset]) -> list[dict[str, Any]]:
    """Each dataset of the page with its versions (PII-scan sentence, the artifacts
    trained on each) and budget: versions and usages read for the whole page at once."""
    versions = catalog.versions_of(session, dataset_ids=[d.id for d in page_of.items])
    used = usage.usages_of(
        session, dataset_version_ids=[v.id for vs in versions.values() for v in vs]
    )
    return [
        {
            "d": d,
            "versions": [
                {
                    "v": v,
                    "pii": pii.findings(v.pii_scan),
                    "used_by": [u for u in used if u.dataset_version_id == v.id],
                }
                for v in versions[d.id]
            ],
            "budget": budget.budget_status(session, dataset_id=d.id),
        }
        for d in page_of.items
    ]


def _may_erase(view: Listing, datasets: list[Dataset]) -> bool:
    """`dataset.erase_subjects` decided once for the page: a dataset's resource carries
    only its project, so the first dataset's decision is every one's (none: no form)."""
    if not datasets:
        return False
    resource = api_datasets.dataset_resource(datasets[0])
    return permits(also(view.guard, "dataset.erase_subjects"), resource)


def _projects(view: Listing) -> list[dict[str, Any]]:
    """Per project where the viewer may list datasets, a page of them (the next page of
    one project: that project only)."""
    listed: list[dict[str, Any]] = []
    for project, after in view.project_pages("dataset.list"):
        page_of = catalog.datasets_page(
            view.session, project_id=project.id, after=after, limit=PAGE
        )
        listed.append(
            {
                "project": project,
                "datasets": _datasets(view.session, page_of),
                "next_link": view.next_link(page_of.next, project=project.id),
                "may_upload": permits(
                    also(view.guard, "dataset.upload"), project_resource(project.id), CLEAN_UPLOAD
                ),
                "may_erase": _may_erase(view, page_of.items),
            }
        )
    return listed


@router.get("", response_class=HTMLResponse, dependencies=[Depends(csrf_checked)])
def list_datasets(
    view: ListingDep,
    uploaded: Annotated[str | None, Query(max_length=40)] = None,
    project: Annotated[str | None, Query(max_length=40)] = None,
    after: AfterQuery = None,
) -> HTMLResponse:
    """Per project the viewer may list datasets in (`dataset.list`): datasets, newest
    first, a keyset page at a time (``project`` and ``after``: one project's next page).
    ``uploaded``: the version just registered (named in a status line)."""
    context = {
        "title": "Datasets",
        "uploaded": uploaded,
        "projects": _projects(view),
        "legal_bases": [b.value for b in LegalBasis],
    }
    return render(view.request, "datasets.html", context)


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
