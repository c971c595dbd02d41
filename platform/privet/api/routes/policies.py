"""The active policy set, for auditors; and reloading it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from privet.api.deps import Guard, IdentityDep, Resource, RuntimeDep, SessionDep, action
from privet.api.routing import OneHopRoute
from privet.policy import PolicySetInfo, ReloadResult

router = APIRouter(route_class=OneHopRoute, prefix="/v1/policies", tags=["policies"])

PLATFORM = Resource(type="Platform", id="privet")


@router.get("", response_model=PolicySetInfo)
def get_policies(
    runtime: RuntimeDep, guard: Annotated[Guard, action("policy.read")]
) -> PolicySetInfo:
    """The active policy set's version hash, files and policy ids."""
    guard.check(PLATFORM)
    return runtime.authorizer.engine.info()


@router.post(":reload", response_model=ReloadResult)
def reload_policies(
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("policy.reload")],
) -> ReloadResult:
    """Re-read the policy files; an invalid set is refused and the old one stays active."""
    guard.check(PLATFORM)
    return runtime.authorizer.reload(session, actor=identity.principal_id, trigger="api")
