"""The model registry: models, versions, model cards, approval, retirement and export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlmodel import Session

from privet.api.deps import (
    Guard,
    IdentityDep,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    project_resource,
    row_resource,
    writes_on_safe_method,
)
from privet.api.routes.inference import get_inference
from privet.api.routing import OneHopRoute
from privet.auth import service as auth_service
from privet.authorization import principal_ref
from privet.compliance import remedies
from privet.models import lifecycle, service, weights
from privet.models.schemas import (
    ErasureFlagsPublic,
    ModelDetail,
    ModelPublic,
    ModelVersionDetail,
    ModelVersionPublic,
    ResolveErasureFlagsRequest,
    RetireRequest,
)
from privet.models.tables import ModelVersion
from privet.monitoring import reference as monitoring_reference
from privet.monitoring import reference_flow
from privet.monitoring.schemas import ApprovedVersionPublic
from privet.monitoring.settings import get_monitoring_settings

router = APIRouter(route_class=OneHopRoute, prefix="/v1/projects/{project_id}", tags=["models"])


def version_resource(version: ModelVersion) -> Resource:
    return row_resource("ModelVersion", version, service.version_attributes(version))


def approval_resource(session: Session, version: ModelVersion) -> Resource:
    """The version as approving (or resuming) it is decided: with its trainer's accountable
    human, which the four-eyes rule compares with the caller's."""
    return row_resource("ModelVersion", version, service.approval_attributes(session, version))


@router.get("/models", response_model=list[ModelPublic])
def list_models(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model.list")],
) -> list[ModelPublic]:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    return [
        ModelPublic.model_validate(m) for m in service.list_models(session, project_id=project.id)
    ]


@router.get("/models/{model_id}", response_model=ModelDetail)
def get_model(
    project_id: str,
    model_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model.read")],
) -> ModelDetail:
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    model = service.get_model(session, project_id=project.id, model_id=model_id)
    guard.check(row_resource("Model", model))
    return service.model_detail(session, model)


@router.get("/model-versions/{version_id}", response_model=ModelVersionDetail)
def get_version(
    project_id: str,
    version_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.read")],
) -> ModelVersionDetail:
    """A version with its metrics, DP guarantee, lineage and model card."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(version_resource(version))
    return service.version_detail(session, version)


@router.get(
    "/model-versions/{version_id}/card",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {}}}},
)
def get_card(
    project_id: str,
    version_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.read")],
) -> PlainTextResponse:
    """The Hugging Face model card (README.md: YAML metadata + text)."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(version_resource(version))
    return PlainTextResponse(version.card, media_type="text/markdown; charset=utf-8")


@router.post("/model-versions/{version_id}:approve", response_model=ApprovedVersionPublic)
def approve_version(
    request: Request,
    project_id: str,
    version_id: str,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    background: BackgroundTasks,
    guard: Annotated[Guard, action("model_version.approve")],
) -> ApprovedVersionPublic:
    """candidate → approved: by a named person (never a service account), never the human
    accountable for the training job (its submitter, or the human behind the submitting
    service account), never while an erasure flag is open (409
    ``model-version-erasure-flagged``).

    The version's monitoring reference is requested in the same transaction and built
    from its evaluation split once the approval has committed (after this answer, which
    says ``pending``): a failed build never undoes the approval; it is recorded and
    re-run with ``POST .../models/{m}/versions/{v}:monitoring-reference``."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(approval_resource(session, version))
    approved = lifecycle.approve(
        session, version=version, actor_id=identity.principal_id, actor_ref=principal_ref(identity)
    )
    monitoring_reference.request_reference(session, version=approved, actor=identity.principal_id)
    background.add_task(
        reference_flow.build_after_approval,
        runtime=runtime,
        service=get_inference(request, runtime),
        version_id=approved.id,
        actor=identity.principal_id,
        cfg=get_monitoring_settings(),
    )
    public = service.version_public(session, approved)
    return ApprovedVersionPublic(
        **public.model_dump(),
        monitoring_reference=monitoring_reference.reference_status(session, approved),
    )


@router.post(
    "/model-versions/{version_id}:resolve-erasure-flags", response_model=ErasureFlagsPublic
)
def resolve_erasure_flags(
    project_id: str,
    version_id: str,
    body: ResolveErasureFlagsRequest,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.resolve_erasure_flags")],
) -> ErasureFlagsPublic:
    """Clear a version's open erasure flags by recording the remedy applied: keeping a
    DP-trained version, where the erasure policy allows it (else 409: retrain instead).
    Audited (``model_version.erasure_resolved``); approval is a separate, later step."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(version_resource(version))
    remedies.resolve_erasure_flags(
        session, version=version, remedy=body.remedy, actor=identity.principal_id
    )
    return service.flags_public(session, version)


@router.post("/model-versions/{version_id}:retire", response_model=ModelVersionPublic)
def retire_version(
    project_id: str,
    version_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("model_version.retire")],
    body: Annotated[RetireRequest | None, Body()] = None,
) -> ModelVersionPublic:
    """candidate | approved → retired: it no longer serves."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(version_resource(version))
    retired = lifecycle.retire(
        session,
        version=version,
        actor_id=identity.principal_id,
        actor_ref=principal_ref(identity),
        reason=body.reason if body else None,
    )
    return service.version_public(session, retired)


@router.get(
    "/model-versions/{version_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}}},
)
@writes_on_safe_method  # the export's audit event commits with the request
def export_version(
    project_id: str,
    version_id: str,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("model_version.export_weights")],
) -> StreamingResponse:
    """An approved version as a Hugging Face folder in a tar stream (config, safetensors,
    tokenizer, model card). Decrypted only into this response; the export is audited."""
    project = auth_service.get_project(session, project_id=project_id, viewer=identity)
    version = service.get_version(session, project_id=project.id, version_id=version_id)
    guard.check(version_resource(version))
    name, chunks = weights.export_archive(
        session, runtime=runtime, version=version, actor_id=identity.principal_id
    )
    return StreamingResponse(
        chunks,
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
