"""Tables and schemas of the identity domain (SQLModel families: Base / Create / table / Public)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints
from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from privet.kit.schemas import StrictSchema
from privet.kit.types import UTCDateTime


class Role(StrEnum):
    """The default roles; what each may do is written in policies/, not here."""

    admin = "admin"
    data_steward = "data_steward"
    ml_engineer = "ml_engineer"
    approver = "approver"
    auditor = "auditor"
    predictor = "predictor"


class PrincipalKind(StrEnum):
    user = "user"
    service_account = "service_account"


# --- projects -----------------------------------------------------------------------------


ProjectName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
]


class ProjectBase(SQLModel):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=2000)


class ProjectCreate(ProjectBase, StrictSchema):
    name: ProjectName = Field(
        description="Lower-case letters, digits and dashes, e.g. `retail-credit`."
    )


class Project(ProjectBase, table=True):
    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)


class ProjectPublic(ProjectBase):
    id: str
    created_at: datetime
    created_by: str


# --- principals ---------------------------------------------------------------------------


class Principal(SQLModel, table=True):
    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_principal_issuer_subject"),)

    id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)
    issuer: str | None = Field(default=None, max_length=500)
    subject: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: A service account's project (where it was created); None for users. Only an admin
    #: of this project mints its keys, and only keys scoped to it.
    project_id: str | None = Field(default=None, max_length=40, index=True)
    #: The human answerable for what this principal does: a user is its own; a service
    #: account's is the human who created it (or, created by a service account, that
    #: account's). Two-person rules compare these, never bare principal ids. NULL only
    #: for a service account whose creator was never recorded (fail closed: see
    #: docs/SECURITY.md, "Four eyes and accountable humans").
    accountable_human_id: str | None = Field(default=None, max_length=40, index=True)


class PrincipalPublic(SQLModel):
    id: str
    kind: str
    name: str
    created_at: datetime
    project_id: str | None = None
    accountable_human_id: str | None


# --- role bindings ------------------------------------------------------------------------


class RoleBindingBase(SQLModel):
    principal_id: str = Field(max_length=40)
    role: Role


class RoleBindingCreate(StrictSchema):
    """Bind an existing principal, or create a service account by giving only a name."""

    principal_id: str | None = Field(default=None, max_length=40)
    service_account_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role


class RoleBinding(SQLModel, table=True):
    __tablename__ = "role_bindings"
    __table_args__ = (
        UniqueConstraint("principal_id", "role", "project_id", name="uq_role_binding"),
    )

    id: str = Field(primary_key=True, max_length=40)
    principal_id: str = Field(foreign_key="principals.id", max_length=40, index=True)
    role: str = Field(max_length=40)
    project_id: str | None = Field(default=None, max_length=40, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)


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


# --- API keys -----------------------------------------------------------------------------


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


class ApiKey(SQLModel, table=True):
    """An API key, stored only as an HMAC-SHA256 digest under the server's pepper."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    principal_id: str = Field(foreign_key="principals.id", max_length=40, index=True)
    project_id: str | None = Field(default=None, foreign_key="projects.id", max_length=40)
    name: str = Field(max_length=200)
    digest: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


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


# --- invitations --------------------------------------------------------------------------


class InvitationCreate(StrictSchema):
    """Invite a person into a project with one role; they accept with the token."""

    name: str = Field(min_length=1, max_length=200, description="The new user's name.")
    role: Role
    ttl_hours: int = Field(default=72, ge=1, le=720)


class Invitation(SQLModel, table=True):
    """A one-use invitation, stored only as an HMAC-SHA256 digest of its token."""

    __tablename__ = "invitations"

    id: str = Field(primary_key=True, max_length=40)
    project_id: str = Field(foreign_key="projects.id", max_length=40, index=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=40)
    digest: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    accepted_by: str | None = Field(default=None, max_length=40)
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


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
