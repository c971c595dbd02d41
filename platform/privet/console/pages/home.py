"""Home: the viewer's projects and what waits for them (versions awaiting their approval:
the newest few, the rest one link away on the Models page)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from privet.auth import service as auth_service
from privet.console.deps import csrf_checked, render
from privet.console.listing import ListingDep
from privet.models import listing
from privet.models.tables import ModelVersionState

router = APIRouter(dependencies=[Depends(csrf_checked)])

WAITING = 10
"""Versions awaiting approval listed on Home; the Models page pages the rest."""


@router.get("/", response_class=HTMLResponse)
def home(view: ListingDep) -> HTMLResponse:
    viewer = view.viewer
    projects = auth_service.list_projects(view.session, viewer=viewer)
    approver_of = [p for p in projects if "approver" in viewer.roles_in(p.id)]
    approving = {p.id: p for p in view.projects("model.list", among=approver_of)}
    candidates = listing.versions_page(
        view.session,
        project_ids=list(approving),
        states=[ModelVersionState.candidate.value],
        limit=WAITING,
    )
    waiting = [
        {"project": approving[d.project_id], "version": d}
        for d in listing.details_of(view.session, candidates.items)
    ]
    rows = [{"project": p, "roles": sorted(viewer.roles_in(p.id))} for p in projects]
    context = {"title": "Home", "projects": rows, "waiting": waiting, "more": candidates.next}
    return render(view.request, "home.html", context)
