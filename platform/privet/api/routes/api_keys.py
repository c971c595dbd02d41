"""API keys: mint (shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from privet.api.deps import Guard, IdentityDep, Resource, RuntimeDep, SessionDep, action
from privet.auth import service
from privet.auth.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from privet.kit.errors import NotFoundError

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


def _owner_resource(principal_id: str, project_id: str | None) -> Resource:
    return Resource(
        type="Principal", id=principal_id, project_id=project_id, attrs={"principal": principal_id}
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(
    body: ApiKeyCreate,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("api_key.create")],
) -> ApiKeyCreated:
    """Mint a key for yourself, or (as a project admin) for a member of that project."""
    owner = body.principal_id or identity.principal_id
    if body.project_id is not None:
        service.get_project(session, project_id=body.project_id, viewer=identity)
    service.get_principal(session, principal_id=owner)
    guard.check(_owner_resource(owner, body.project_id), {"self": owner == identity.principal_id})
    return service.create_api_key(
        session,
        pepper=runtime.api_key_pepper,
        principal_id=owner,
        name=body.name,
        ttl_days=body.ttl_days or runtime.settings.api_key_ttl_days,
        actor=identity.principal_id,
        project_id=body.project_id,
    )


@router.get("", response_model=list[ApiKeyPublic])
def list_api_keys(
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("api_key.list")],
) -> list[ApiKeyPublic]:
    """Your own keys (never their secrets)."""
    guard.check(_owner_resource(identity.principal_id, None), {"self": True})
    keys = service.list_api_keys(session, principal_ids=[identity.principal_id])
    return [ApiKeyPublic.model_validate(k) for k in keys]


@router.delete("/{key_id}", status_code=status.HTTP_200_OK, response_model=ApiKeyPublic)
def revoke_api_key(
    key_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("api_key.revoke")],
) -> ApiKeyPublic:
    key = service.get_api_key(session, key_id=key_id)
    own = key.principal_id == identity.principal_id
    if not own and not identity.roles_in(key.project_id):
        raise NotFoundError(f"API key {key_id!r} does not exist")
    guard.check(_owner_resource(key.principal_id, key.project_id), {"self": own})
    return ApiKeyPublic.model_validate(
        service.revoke_api_key(session, key=key, actor=identity.principal_id)
    )
