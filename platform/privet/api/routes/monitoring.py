"""Monitoring and decision governance of served models.

Routes and their actions:
- ``GET  /v1/projects/{p}/review-queue``                              review_queue.read
- ``POST /v1/projects/{p}/predictions/{id}:outcome``                  prediction.outcome
- ``GET  /v1/projects/{p}/models/{m}/versions/{v}/monitoring``        monitoring.read
- ``POST /v1/projects/{p}/models/{m}/versions/{v}:resume``            model_version.resume
- ``POST /v1/projects/{p}/models/{m}/versions/{v}:monitoring-reference``
                                                                      monitoring.reference.build

Reviews that close queue items go through ``POST .../predictions/{id}:review``
(inference). ``attach_monitoring`` gives the process's monitor the gateway's policy
engine and metrics registry (called by the app factory).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from privet.api.deps import (
    Guard,
    IdentityDep,
    QueryInt,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    decides_before_writing,
    row_resource,
)
from privet.api.paging import AfterQuery, LimitQuery
from privet.api.problems import error_problem
from privet.api.routes.inference import get_inference, prediction_resource, version_resource
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.db import read_session
from privet.inference import records
from privet.inference.versions import VersionInfo, lookup_version
from privet.kit.errors import NotFoundError
from privet.models import service as models_service
from privet.models.schemas import ModelVersionPublic
from privet.models.tables import ModelVersion
from privet.monitoring import Monitor, reference_flow
from privet.monitoring import service as monitoring
from privet.monitoring.schemas import (
    OutcomeCreate,
    OutcomePublic,
    ReferenceStatus,
    ResumeRequest,
    ReviewQueue,
)
from privet.runtime import Runtime

router = APIRouter(route_class=OneHopRoute, prefix="/v1/projects", tags=["monitoring"])


def attach_monitoring(app: FastAPI) -> Monitor:
    runtime: Runtime = app.state.runtime
    return runtime.monitoring.attach(registry=getattr(app.state, "metrics_registry", None))


def get_monitor(request: Request) -> Monitor:
    return attach_monitoring(request.app)


def _info(session: SessionDep, project_id: str, model: str, version: str) -> VersionInfo:
    return lookup_version(session, project_id=project_id, model=model, version=version)


def _row(session: SessionDep, info: VersionInfo) -> ModelVersion:
    row = session.get(ModelVersion, info.id)
    if row is None:  # pragma: no cover - versions are never deleted
        raise NotFoundError(f"model version {info.id!r} is gone")
    return row


@router.get(
    "/{project_id}/review-queue",
    response_model=ReviewQueue,
    summary="Predictions the decision rules kept from being final (pending_review, refer)",
)
def get_review_queue(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("review_queue.read")],
    status: Annotated[Literal["open", "closed", "all"], Query()] = "open",
    after: AfterQuery = None,
    limit: LimitQuery = 200,
) -> ReviewQueue:
    """A page, oldest first; pass ``next`` as ``after`` for the following page."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(Resource(type="Project", id=project.id, project_id=project.id))
    return monitoring.review_queue(
        session, project_id=project.id, status=status, after=after, limit=limit
    )


@router.post(
    "/{project_id}/predictions/{prediction_id}:outcome",
    response_model=OutcomePublic,
    status_code=201,
    summary="Record the true label of a prediction (ground truth for live quality)",
)
def record_outcome(
    request: Request,
    project_id: str,
    prediction_id: str,
    body: OutcomeCreate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("prediction.outcome")],
) -> OutcomePublic:
    auth_service.get_project(session, project_id=project_id, viewer=identity)
    prediction = records.get_prediction(session, project_id=project_id, prediction_id=prediction_id)
    guard.check(prediction_resource(prediction))
    return monitoring.record_outcome(
        session,
        monitor=get_monitor(request),
        prediction=prediction,
        label=body.label,
        actor=identity.principal_id,
    )


@router.get(
    "/{project_id}/models/{model}/versions/{version}/monitoring",
    summary="Drift, live quality, alerts and reviews of one model version, per window",
)
def version_monitoring(
    request: Request,
    project_id: str,
    model: str,
    version: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("monitoring.read")],
    windows: Annotated[QueryInt, Query(ge=1, le=1000)] = 48,
) -> dict[str, Any]:
    auth_service.get_project(session, project_id=project_id, viewer=identity)
    info = _info(session, project_id, model, version)
    guard.check(version_resource(info))
    monitor = get_monitor(request)
    return monitoring.monitoring_view(
        session, version=_row(session, info), cfg=monitor.config, windows=windows
    )


@router.post(
    "/{project_id}/models/{model}/versions/{version}:resume",
    response_model=ModelVersionPublic,
    summary="suspended → approved: an approver lets a suspended version serve again",
)
def resume_version(
    project_id: str,
    model: str,
    version: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.resume")],
    runtime: RuntimeDep,
    body: Annotated[ResumeRequest | None, Body()] = None,
) -> ModelVersionPublic:
    auth_service.get_project(session, project_id=project_id, viewer=identity)
    info = _info(session, project_id, model, version)
    current = _row(session, info)
    # Resuming lets a version serve again: the approval's four-eyes rules apply.
    guard.check(
        row_resource("ModelVersion", current, models_service.approval_attributes(session, current))
    )
    row = monitoring.resume_version(
        session,
        version=current,
        actor_id=identity.principal_id,
        reason=body.reason if body else "",
    )
    return models_service.version_public(session, row)


@router.post(
    "/{project_id}/models/{model}/versions/{version}:monitoring-reference",
    response_model=ReferenceStatus,
    summary="(Re)build a version's drift reference from its evaluation split",
)
@decides_before_writing
def build_monitoring_reference(
    request: Request,
    project_id: str,
    model: str,
    version: str,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("monitoring.reference.build")],
) -> ReferenceStatus | JSONResponse:
    """Decrypt the version's evaluation split in memory, classify at most
    ``PRIVET_MONITORING_REFERENCE_MAX_ROWS`` of its rows, and keep only their aggregates
    (``monitoring.reference_set``). Approval does this by itself; run it again when that
    build failed (or after an outage left it ``pending``). A failure answers 409
    ``monitoring-reference-failed`` and is recorded (``monitoring.reference_failed``); a
    ready reference is kept when a rebuild fails. Authorized in a read-only snapshot; the
    forward passes run with no transaction open; the result commits in the request's
    transaction (409 ``model-version-not-serving``, nothing written, for a version retired
    meanwhile)."""
    with read_session(runtime.engine) as reader:
        auth_service.get_project(reader, project_id=project_id, viewer=identity)
        info = _info(reader, project_id, model, version)
        guard.check(version_resource(info))
    outcome = reference_flow.rebuild_reference(
        session,
        runtime=runtime,
        version_id=info.id,
        cfg=get_monitor(request).config,
        service=get_inference(request, runtime),
        actor=identity.principal_id,
    )
    if isinstance(outcome, reference_flow.RebuildFailed):
        return error_problem(request, outcome.error)
    return outcome
