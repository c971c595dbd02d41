"""Monitoring: each model version in service (approved or suspended) the viewer may
monitor, with its live accuracy, calibration and drift per window as server-drawn SVG
(the monitoring report's charts), the thresholds, the alerts raised, the reviews'
outcomes and its serving state; an approver resumes a suspended version (the API's
`model_version.resume` handler: the four-eyes rules of approval apply). The Resume form
is shown only where that decision allows it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep
from privet.api.paging import AfterQuery
from privet.api.routes import models as api_models
from privet.api.routes import monitoring as api_monitoring
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.console.listing import LimitQuery, ListingDep
from privet.models import listing
from privet.monitoring import service as monitoring
from privet.monitoring.schemas import ResumeRequest
from privet.reports.kinds.monitoring import charts_of

router = APIRouter(prefix="/monitoring", dependencies=[Depends(csrf_checked)])

IN_SERVICE = ("approved", "suspended")
WINDOWS = 48
PAGE = 10


@router.get("", response_class=HTMLResponse)
def overview(view: ListingDep, after: AfterQuery = None, limit: LimitQuery = PAGE) -> HTMLResponse:
    """The versions in service whose monitoring the viewer may read (`monitoring.read`
    decided per version, as on the API), newest first, a keyset page at a time, each
    with its last windows."""
    session, guard = view.session, view.guard
    cfg = api_monitoring.get_monitor(view.request).config
    projects = {p.id: p for p in view.projects("model.list")}
    listed = listing.versions_page(
        session, project_ids=list(projects), states=IN_SERVICE, after=after, limit=limit
    )
    shown: list[dict[str, Any]] = []
    for version in listed.items:
        if not permits(also(guard, "monitoring.read"), api_models.version_resource(version)):
            continue
        seen = monitoring.monitoring_view(session, version=version, cfg=cfg, windows=WINDOWS)
        shown.append(
            {
                "project": projects[version.project_id],
                "view": seen,
                "charts": charts_of(seen["windows"], seen["thresholds"]),
                "recent": list(reversed(seen["windows"][-8:])),
                "may_resume": version.state == "suspended"
                and permits(
                    also(guard, "model_version.resume"),
                    api_models.approval_resource(session, version),
                ),
            }
        )
    context = {
        "title": "Monitoring",
        "versions": shown,
        "next_link": view.next_link(listed.next),
    }
    return render(view.request, "monitoring.html", context)


@router.post("/{project_id}/{model_id}/{version_id}/resume")
def resume(
    project_id: str,
    model_id: str,
    version_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("model_version.resume")],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> RedirectResponse:
    """suspended → approved (the API's handler, with the console guard)."""
    api_monitoring.resume_version(
        project_id=project_id,
        model=model_id,
        version=version_id,
        session=session,
        identity=viewer,
        guard=guard,
        runtime=runtime,
        body=ResumeRequest(reason=reason.strip()),
    )
    return RedirectResponse("/monitoring", status_code=303)
