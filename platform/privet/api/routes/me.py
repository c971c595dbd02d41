"""`GET /v1/me`: the caller's own principal, roles and credential expiry (identity.read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from privet.api.deps import Guard, IdentityDep, Resource, SessionDep, action
from privet.api.routing import OneHopRoute
from privet.auth import capabilities
from privet.auth.me import MePublic, describe
from privet.auth.service import get_principal

router = APIRouter(route_class=OneHopRoute, prefix="/v1", tags=["identity"])


@router.get("/me", response_model=MePublic)
def get_me(
    session: SessionDep, identity: IdentityDep, guard: Annotated[Guard, action("identity.read")]
) -> MePublic:
    """Who the presented credential authenticates as (`privet whoami`)."""
    guard.check(
        Resource(
            type="Principal",
            id=identity.principal_id,
            attrs=capabilities.owner_attrs(
                get_principal(session, principal_id=identity.principal_id), key_project=None
            ),
        )
    )
    return describe(session, identity=identity)
