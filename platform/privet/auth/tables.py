"""Tables of the identity domain (request and response schemas: ``privet.auth.schemas``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

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


class ProjectBase(SQLModel):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=2000)


class Project(ProjectBase, table=True):
    __tablename__ = "projects"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=40)


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


# --- role bindings ------------------------------------------------------------------------


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


# --- API keys -----------------------------------------------------------------------------


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


# --- invitations --------------------------------------------------------------------------


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
