"""Models: each project's versions with their card, evaluation, ε and lineage; approve or
retire. Approval and retirement call the API's handlers with a console guard, so the
four-eyes rule (`model.segregation-of-duties`) refuses here exactly as on the API, and the
page says which rule refused and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep
from privet.api.paging import AfterQuery
from privet.api.routes import models as api_models
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.console.listing import LimitQuery, Listing, ListingDep
from privet.models import listing
from privet.models.schemas import RetireRequest
from privet.models.tables import ModelVersion, ModelVersionState

router = APIRouter(prefix="/models", dependencies=[Depends(csrf_checked)])

PAGE = 20
RETIRABLE = ("candidate", "approved", "suspended")


def _forms(view: Listing, versions: Sequence[ModelVersion]) -> dict[str, set[str]]:
    """Per version, the forms the viewer may use (as the submit decides): approve per
    candidate (the four-eyes rule reads its trainer), retire once per project (no rule
    of retiring reads the version)."""
    forms: dict[str, set[str]] = {v.id: set() for v in versions}
    retire: dict[str, bool] = {}
    for v in versions:
        approve = also(view.guard, "model_version.approve")
        if v.state == "candidate" and permits(
            approve, api_models.approval_resource(view.session, v)
        ):
            forms[v.id].add("approve")
        if v.state in RETIRABLE and v.project_id not in retire:
            resource = api_models.version_resource(v)
            retire[v.project_id] = permits(also(view.guard, "model_version.retire"), resource)
        if v.state in RETIRABLE and retire[v.project_id]:
            forms[v.id].add("retire")
    return forms


@router.get("", response_class=HTMLResponse)
def list_models(
    view: ListingDep,
    state: Annotated[ModelVersionState | None, Query()] = None,
    after: AfterQuery = None,
    limit: LimitQuery = PAGE,
) -> HTMLResponse:
    """The versions the viewer may read (`model.list` decided per project), newest first,
    a keyset page at a time; ``state`` filters (Home links to the candidates)."""
    projects = {p.id: p for p in view.projects("model.list")}
    listed = listing.versions_page(
        view.session,
        project_ids=list(projects),
        states=[state.value] if state else [],
        after=after,
        limit=limit,
    )
    forms = _forms(view, listed.items)
    shown = [
        {"project": projects[d.project_id], "detail": d, "forms": forms[d.id]}
        for d in listing.details_of(view.session, listed.items)
    ]
    context = {
        "title": "Models",
        "versions": shown,
        "state": state.value if state else "",
        "states": [s.value for s in ModelVersionState],
        "next_link": view.next_link(listed.next),
    }
    return render(view.request, "models.html", context)


@router.post("/{project_id}/{version_id}/approve")
def approve(
    request: Request,
    project_id: str,
    version_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    guard: Annotated[Guard, page("model_version.approve")],
) -> RedirectResponse:
    """candidate → approved; a refusal renders the 403 page with the rule and why."""
    api_models.approve_version(
        request=request,
        project_id=project_id,
        version_id=version_id,
        session=session,
        identity=viewer,
        runtime=runtime,
        background=background,
        guard=guard,
    )
    return RedirectResponse("/models", status_code=303, background=background)


@router.post("/{project_id}/{version_id}/retire")
def retire(
    project_id: str,
    version_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("model_version.retire")],
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    api_models.retire_version(
        project_id=project_id,
        version_id=version_id,
        session=session,
        identity=viewer,
        guard=guard,
        body=RetireRequest(reason=reason or None),
    )
    return RedirectResponse("/models", status_code=303)
