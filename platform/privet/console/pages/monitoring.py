"""Monitoring: each model version in service (approved or suspended) the viewer may
monitor, with its live accuracy, calibration and drift per window as server-drawn SVG
(the monitoring report's charts), the thresholds, the alerts raised, the reviews'
outcomes and its serving state; an approver resumes a suspended version (the API's
`model_version.resume` handler: the four-eyes rules of approval apply)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep, project_resource
from privet.api.routes import monitoring as api_monitoring
from privet.api.routes.inference import version_resource
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.inference.versions import lookup_version
from privet.models import service as models
from privet.monitoring import service as monitoring
from privet.monitoring.schemas import ResumeRequest
from privet.reports.kinds.monitoring import charts_of

router = APIRouter(prefix="/monitoring", dependencies=[Depends(csrf_checked)])

IN_SERVICE = ("approved", "suspended")
WINDOWS = 48


@router.get("", response_class=HTMLResponse)
def overview(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
) -> HTMLResponse:
    """Every version in service whose monitoring the viewer may read (`monitoring.read`
    decided per version, as on the API), with its last windows."""
    guard.check(PLATFORM)
    cfg = api_monitoring.get_monitor(request).config
    shown: list[dict[str, Any]] = []
    for project in auth_service.list_projects(session, viewer=viewer):
        if not permits(also(guard, "model.list"), project_resource(project.id)):
            continue
        for model in models.list_models(session, project_id=project.id):
            for version in models.list_versions(session, model_id=model.id):
                if version.state not in IN_SERVICE:
                    continue
                info = lookup_version(
                    session, project_id=project.id, model=model.id, version=version.id
                )
                if not permits(also(guard, "monitoring.read"), version_resource(info)):
                    continue
                view = monitoring.monitoring_view(
                    session, version=version, cfg=cfg, windows=WINDOWS
                )
                shown.append(
                    {
                        "project": project,
                        "view": view,
                        "charts": charts_of(view["windows"], view["thresholds"]),
                        "recent": list(reversed(view["windows"][-8:])),
                    }
                )
    return render(request, "monitoring.html", {"title": "Monitoring", "versions": shown})


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
