"""Home: the viewer's projects and what waits for them (versions awaiting their approval)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from privet.api.deps import Guard, SessionDep, project_resource
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.models import service as models

router = APIRouter(dependencies=[Depends(csrf_checked)])


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
) -> HTMLResponse:
    guard.check(PLATFORM)
    projects = auth_service.list_projects(session, viewer=viewer)
    waiting: list[dict[str, Any]] = []
    for project in projects:
        roles = viewer.roles_in(project.id)
        if "approver" not in roles or not permits(
            also(guard, "model.list"), project_resource(project.id)
        ):
            continue
        for model in models.list_models(session, project_id=project.id):
            for version in models.list_versions(session, model_id=model.id):
                if version.state == "candidate":
                    waiting.append({"project": project, "model": model, "version": version})
    rows = [{"project": p, "roles": sorted(viewer.roles_in(p.id))} for p in projects]
    return render(request, "home.html", {"title": "Home", "projects": rows, "waiting": waiting})
