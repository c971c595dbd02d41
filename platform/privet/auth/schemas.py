"""Request and response schemas of the identity domain (its tables: ``privet.auth.tables``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import StringConstraints
from sqlmodel import Field, SQLModel

from privet.auth.tables import ProjectBase, Role
from privet.kit.schemas import StrictSchema

ProjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
]


class ProjectCreate(ProjectBase, StrictSchema):
    name: ProjectName = Field(
        description="Lower-case letters, digits and dashes, e.g. `retail-credit`."
    )


class ProjectPublic(ProjectBase):
    id: str
    created_at: datetime
    created_by: str


class PrincipalPublic(SQLModel):
    id: str
    kind: str
    name: str
    created_at: datetime
    project_id: str | None = None
    accountable_human_id: str | None


class RoleBindingCreate(StrictSchema):
    """Bind an existing principal, or create a service account by giving only a name."""

    principal_id: str | None = Field(default=None, max_length=40)
    service_account_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role


class RoleBindingPublic(SQLModel):
    id: str
    principal_id: str
    role: str
    project_id: str | None
    created_at: datetime
    created_by: str
    principal_kind: str | None = Field(
        default=None, description="user or service_account (the bound principal's kind)."
    )
    accountable_human_id: str | None = Field(
        default=None,
        description="The human answerable for the bound principal (a user: itself; a "
        "service account: the human who created it).",
    )


class ApiKeyCreate(StrictSchema):
    name: str = Field(min_length=1, max_length=200)
    principal_id: str | None = Field(
        default=None, max_length=40, description="Key owner; default: the caller."
    )
    project_id: str | None = Field(
        default=None,
        max_length=40,
        description="Restrict the key to this project (required for another principal).",
    )
    ttl_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Lifetime; default: the server's default, cut to the minting key's expiry.",
    )


class ApiKeyPublic(SQLModel):
    id: str
    principal_id: str
    project_id: str | None
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """Returned once, at creation: the only time the secret is ever shown."""

    key: str


class InvitationCreate(StrictSchema):
    """Invite a person into a project with one role; they accept with the token."""

    name: str = Field(min_length=1, max_length=200, description="The new user's name.")
    role: Role
    ttl_hours: int = Field(default=72, ge=1, le=720)


class InvitationPublic(SQLModel):
    id: str
    project_id: str
    name: str
    role: str
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    created_by: str


class InvitationCreated(SQLModel):
    """Returned once, at creation: the only time the token is ever shown."""

    id: str
    project_id: str
    name: str
    role: str
    expires_at: datetime
    token: str


class InvitationAccept(StrictSchema):
    key_name: str = Field(default="first key", min_length=1, max_length=200)


class InvitationAccepted(SQLModel):
    principal_id: str
    name: str
    project_id: str
    role: str
    api_key: ApiKeyCreated
