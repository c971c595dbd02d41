"""Who am I: the caller's principal, role bindings and the credential it presented.

`privet login` and `privet whoami` use it so a person sees which key they are signed in
with, what it lets them do, and when it expires, before a request is refused.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session

from privet.auth.identity import Identity
from privet.auth.tables import ApiKey


class RoleHeld(BaseModel):
    role: str
    project_id: str | None  # None: platform-wide


class CredentialPublic(BaseModel):
    method: str  # api_key | oidc
    id: str | None
    name: str | None = None
    project_id: str | None = None  # the key is scoped to this project
    expires_at: datetime | None = None


class MePublic(BaseModel):
    principal_id: str
    kind: str
    name: str
    roles: list[RoleHeld]
    credential: CredentialPublic


def describe(session: Session, *, identity: Identity) -> MePublic:
    """The caller as it authenticated: roles in the key's project scope only, if scoped."""
    bindings = sorted(identity.bindings, key=lambda b: (b[1] or "", b[0]))
    if identity.scope_project_id is not None:
        bindings = [b for b in bindings if b[1] == identity.scope_project_id]
    credential = CredentialPublic(
        method=identity.method,
        id=identity.credential_id,
        project_id=identity.scope_project_id,
        expires_at=identity.expires_at,
    )
    if identity.method == "api_key" and identity.credential_id is not None:
        key = session.get(ApiKey, identity.credential_id)
        if key is not None:
            credential.name = key.name
            credential.expires_at = key.expires_at
    return MePublic(
        principal_id=identity.principal_id,
        kind=identity.kind,
        name=identity.name,
        roles=[RoleHeld(role=role, project_id=project) for role, project in bindings],
        credential=credential,
    )
