"""Predict: classify texts with a model's serving version (its newest approved one) by
calling the API's own `POST /v1/projects/{p}/models/{m}:predict` handler with the
console's guard: the same `model_version.predict` decision (role and purpose), the same
refusals (a version that does not serve, a subject who objected) and one ledger event per
prediction holding a keyed digest of the text, never the text. The texts are not kept."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep, decides_before_writing
from privet.api.routes import inference as api_inference
from privet.api.routes.projects import PLATFORM
from privet.auth import service as auth_service
from privet.console.deps import ViewerDep, csrf_checked, page, render, validated
from privet.inference.schemas import PredictRequest
from privet.kit.errors import ConflictError, InvalidInputError

router = APIRouter(prefix="/predict", dependencies=[Depends(csrf_checked)])

MAX_TEXTS = 50


@router.get("", response_class=HTMLResponse)
def predict_form(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.list")],
) -> HTMLResponse:
    """The form: the viewer's projects; whether they may predict is the POST's decision."""
    guard.check(PLATFORM)
    projects = auth_service.list_projects(session, viewer=viewer)
    return render(request, "predict.html", {"title": "Predict", "projects": projects})


@router.post("", response_class=HTMLResponse)
@decides_before_writing
def predict(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("model_version.predict")],
    project_id: Annotated[str, Form(min_length=1, max_length=40)],
    model: Annotated[str, Form(min_length=1, max_length=100)],
    purpose: Annotated[str, Form(min_length=1, max_length=64)],
    texts: Annotated[str, Form(min_length=1, max_length=MAX_TEXTS * 10_000)],
) -> HTMLResponse:
    """One text per line, one prediction each, with the serving version."""
    lines = [line.strip() for line in texts.splitlines() if line.strip()][: MAX_TEXTS + 1]
    body = validated(
        PredictRequest,
        {"purpose": purpose.strip(), "items": [{"text": line} for line in lines]},
        refused="nothing was classified",
    )
    if len(body.items) > MAX_TEXTS:
        raise InvalidInputError(f"at most {MAX_TEXTS} texts at once (one per line)")
    call = api_inference.PredictCall(
        request=request,
        session=session,
        identity=viewer,
        guard=guard,
        service=api_inference.get_inference(request, runtime),
    )
    answer = api_inference.predict_serving(
        project_id=project_id, model=model.strip(), body=body, call=call
    )
    if isinstance(answer, JSONResponse):  # a refusal the API answers (and ledgers) as 409
        problem = json.loads(bytes(answer.body))
        refused = ConflictError(str(problem.get("detail", "refused")))
        return render(
            request,
            "error.html",
            {"title": problem.get("title", "Refused"), "error": refused},
            status_code=answer.status_code,
        )
    projects = auth_service.list_projects(session, viewer=viewer)
    rows = list(zip(lines, answer.predictions, strict=True))
    return render(
        request,
        "predict.html",
        {"title": "Predict", "projects": projects, "answer": answer, "rows": rows},
    )
