"""Models: each project's versions with their card, evaluation, ε and lineage; approve or
retire. Approval and retirement call the API's handlers with a console guard, so the
four-eyes rule (`model.segregation-of-duties`) refuses here exactly as on the API, and the
page says which rule refused and why."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep, project_resource
from privet.api.routes import models as api_models
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.console.deps import ViewerDep, also, csrf_checked, page, permits, render
from privet.models import service as models
from privet.models.schemas import RetireRequest

router = APIRouter(prefix="/models", dependencies=[Depends(csrf_checked)])


@router.get("", response_class=HTMLResponse)
def list_models(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
) -> HTMLResponse:
    """Every version the viewer may read, per project (`model.list` decided per project)."""
    guard.check(PLATFORM)
    shown: list[dict[str, Any]] = []
    for project in auth_service.list_projects(session, viewer=viewer):
        if not permits(also(guard, "model.list"), project_resource(project.id)):
            continue
        for model in models.list_models(session, project_id=project.id):
            for version in models.list_versions(session, model_id=model.id):
                shown.append(
                    {
                        "project": project,
                        "model": model,
                        "detail": models.version_detail(session, version),
                        "card": version.card,
                    }
                )
    return render(request, "models.html", {"title": "Models", "versions": shown})


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
