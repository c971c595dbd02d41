"""Platform administration: the master key's health (provider, key id, versions and their
dates, reachable), for whoever `master_key.status` allows (admins, auditors). Never key
material; the decision is a ledger event like every other."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from privet.api.deps import Guard, RuntimeDep, action
from privet.api.routes.projects import PLATFORM
from privet.api.routing import OneHopRoute
from privet.crypto import MasterKeyHealth, master_key_health

router = APIRouter(route_class=OneHopRoute, prefix="/v1/admin", tags=["admin"])


@router.get("/master-key", response_model=MasterKeyHealth)
def get_master_key(
    runtime: RuntimeDep, guard: Annotated[Guard, action("master_key.status")]
) -> MasterKeyHealth:
    """The master key's provider, id, versions and dates, and whether it wraps and
    unwraps right now (a throwaway key is wrapped and unwrapped to prove it)."""
    guard.check(PLATFORM)
    return master_key_health(runtime.key_provider)
