"""API keys: mint (shown once), list, revoke.

Who may mint or revoke which key is decided by policies/capabilities.cedar over the facts
`privet.auth.capabilities` gathers (owner kind and project, the minting key's scope and
expiry); a refusal names the rule and says why.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from privet.api.deps import Guard, IdentityDep, Resource, RuntimeDep, SessionDep, action
from privet.api.routing import OneHopRoute
from privet.auth import capabilities, service
from privet.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from privet.kit.errors import NotFoundError

router = APIRouter(route_class=OneHopRoute, prefix="/v1/api-keys", tags=["api-keys"])


def owner_resource(facts: capabilities.Facts, project_id: str | None) -> Resource:
    """The key owner as the `api_key.*` decisions see it (the console decides its key
    forms on the same resource)."""
    return Resource(
        type="Principal", id=facts.attrs["principal"], project_id=project_id, attrs=facts.attrs
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(
    body: ApiKeyCreate,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("api_key.create")],
) -> ApiKeyCreated:
    """Mint a key for yourself (no wider in scope or lifetime than the key you call with),
    or, as a project admin, for a service account of that project, scoped to it."""
    if body.project_id is not None:
        service.get_project(session, project_id=body.project_id, viewer=identity)
    owner = service.get_principal(session, principal_id=body.principal_id or identity.principal_id)
    mint = capabilities.plan_key_mint(
        session,
        identity=identity,
        owner=owner,
        project_id=body.project_id,
        ttl_days=body.ttl_days,
        default_ttl_days=runtime.settings.api_key_ttl_days,
    )
    guard.check(
        owner_resource(mint.facts, body.project_id), mint.facts.context, explain=mint.facts.reasons
    )
    return service.create_api_key(
        session,
        pepper=runtime.api_key_pepper,
        principal_id=owner.id,
        name=body.name,
        expires_at=mint.expires_at,
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
    me = service.get_principal(session, principal_id=identity.principal_id)
    facts = capabilities.Facts(capabilities.owner_attrs(me, key_project=None), {"self": True})
    guard.check(owner_resource(facts, None), facts.context)
    keys = service.list_api_keys(session, principal_ids=[identity.principal_id])
    return [ApiKeyPublic.model_validate(k) for k in keys]


@router.delete("/{key_id}", status_code=status.HTTP_200_OK, response_model=ApiKeyPublic)
def revoke_api_key(
    key_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("api_key.revoke")],
) -> ApiKeyPublic:
    """Revoke your own key; as a project admin, a key of that project's service accounts."""
    key = service.get_api_key(session, key_id=key_id)
    own = key.principal_id == identity.principal_id
    if not own and not identity.roles_in(key.project_id):
        raise NotFoundError(f"API key {key_id!r} does not exist")
    owner = service.get_principal(session, principal_id=key.principal_id)
    facts = capabilities.revoke_facts(identity, owner=owner, key=key)
    guard.check(owner_resource(facts, key.project_id), facts.context, explain=facts.reasons)
    return ApiKeyPublic.model_validate(
        service.revoke_api_key(session, key=key, actor=identity.principal_id)
    )
