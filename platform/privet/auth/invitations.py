"""Invitations: how a person joins a project without anyone minting a key for them.

A project admin invites a name with one role; the token (`pvi_<id>_<secret>`, shown once,
stored only as an HMAC digest like API keys) is the person's one credential for
`POST /v1/invitations:accept`, which creates their user principal, binds the role and
mints *their own* first key, scoped to the project, in one transaction. The token is
used once, expires, can be revoked, and is refused by every other route.

Ledger events carry ids, the role and times only: never the invited name (personal data).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from privet import ledger
from privet.auth import api_keys, capabilities, service
from privet.auth.identity import Identity
from privet.auth.schemas import InvitationAccepted, InvitationCreate, InvitationCreated
from privet.auth.tables import Invitation, PrincipalKind, Project, Role
from privet.kit.errors import ConflictError, NotFoundError, UnauthenticatedError
from privet.kit.ids import utcnow

TOKEN_PREFIX = "pvi"  # noqa: S105 (the public prefix of invitation tokens)
KIND = "invitation"
"""`Identity.kind` of a caller authenticated by an invitation token (Cedar: `Invitation`)."""

_TOKEN_RE = re.compile(r"^pvi_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
_NO_DIGEST = "0" * 64


def _generate() -> tuple[str, str]:
    """A new (invitation id, full token); the token is returned once, never stored."""
    short = "".join(secrets.choice(_ALPHABET) for _ in range(16))
    return f"inv_{short}", f"{TOKEN_PREFIX}_{short}_{secrets.token_urlsafe(32)}"


def create(
    session: Session, *, pepper: bytes, project: Project, data: InvitationCreate, actor: str
) -> InvitationCreated:
    """A new invitation into `project`; who may grant the role was decided by the policy
    (project.invite, grants.role-at-least-as-high) before."""
    invitation_id, token = _generate()
    now = utcnow()
    row = Invitation(
        id=invitation_id,
        project_id=project.id,
        name=data.name,
        role=data.role.value,
        digest=api_keys.digest(pepper, token),
        created_at=now,
        created_by=actor,
        expires_at=now + timedelta(hours=data.ttl_hours),
    )
    session.add(row)
    session.flush()
    ledger.emit(
        session,
        type="invitation.created",
        actor=actor,
        project=project.id,
        objects={"invitation": row.id},
        details={"role": row.role, "expires_at": row.expires_at.isoformat()},
    )
    return InvitationCreated(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        role=row.role,
        expires_at=row.expires_at,
        token=token,
    )


def list_for(session: Session, *, project: Project) -> Sequence[Invitation]:
    return session.exec(
        select(Invitation)
        .where(Invitation.project_id == project.id)
        .order_by(col(Invitation.created_at))
    ).all()


def get(session: Session, *, project: Project, invitation_id: str) -> Invitation:
    row = session.get(Invitation, invitation_id)
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"invitation {invitation_id!r} does not exist in this project")
    return row


def revoke(session: Session, *, invitation: Invitation, actor: str) -> Invitation:
    """Withdraw an invitation that was not accepted yet."""
    if invitation.accepted_at is not None:
        raise ConflictError(
            f"invitation {invitation.id!r} was already accepted: remove the member's role "
            "binding instead (DELETE /v1/projects/{project_id}/members/{binding_id})"
        )
    if invitation.revoked_at is not None:
        raise ConflictError(f"invitation {invitation.id!r} is already revoked")
    invitation.revoked_at = utcnow()
    session.add(invitation)
    session.flush()
    ledger.emit(
        session,
        type="invitation.revoked",
        actor=actor,
        project=invitation.project_id,
        objects={"invitation": invitation.id},
    )
    return invitation


def authenticate(session: Session, *, pepper: bytes, presented: str) -> Identity:
    """The invitation a presented token names, as a caller that may only accept it.

    401 for a malformed, unknown, revoked or expired token; 409 for one already accepted
    (the message never repeats the token)."""
    match = _TOKEN_RE.match(presented)
    if match is None:
        raise UnauthenticatedError("the invitation token is malformed (expected pvi_<id>_<secret>)")
    row = session.get(Invitation, f"inv_{match.group(1)}")
    stored = row.digest if row is not None else _NO_DIGEST  # same work for unknown ids
    if not api_keys.matches(pepper, presented, stored) or row is None:
        raise UnauthenticatedError("the invitation token is not valid")
    if row.revoked_at is not None:
        raise UnauthenticatedError(
            "the invitation has been revoked: ask a project admin for a new one"
        )
    if row.accepted_at is not None:
        raise ConflictError(
            f"the invitation was already accepted at {row.accepted_at.isoformat()}; it is "
            "used once: use the API key it gave you"
        )
    if row.expires_at <= utcnow():
        raise UnauthenticatedError("the invitation has expired: ask a project admin for a new one")
    return Identity(
        principal_id=row.id,
        kind=KIND,
        name=KIND,
        bindings=frozenset(),
        method=KIND,
        credential_id=row.id,
        scope_project_id=row.project_id,
    )


def accept(
    session: Session, *, pepper: bytes, identity: Identity, key_name: str, ttl_days: int
) -> InvitationAccepted:
    """Use the invitation once: a new user principal, its role in the project, and its own
    first API key scoped to the project; all or nothing, one ledger event per step."""
    now = utcnow()
    used = session.execute(
        update(Invitation)
        .where(
            col(Invitation.id) == identity.credential_id,
            col(Invitation.accepted_at).is_(None),
            col(Invitation.revoked_at).is_(None),
            col(Invitation.expires_at) > now,
        )
        .values(accepted_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(
            "the invitation was accepted, revoked or expired meanwhile; it is used once"
        )
    row = session.get(Invitation, identity.credential_id)
    assert row is not None
    session.refresh(row)
    # The grant is the inviter's: it stands only while the inviter may still grant it.
    inviter = service.bindings_of(session, principal_id=row.created_by)
    if not capabilities.may_grant(inviter, role=row.role, project_id=row.project_id):
        raise ConflictError(
            f"the person who invited you no longer holds a role that may grant {row.role!r} "
            "in this project (grants.role-at-least-as-high): ask a project admin for a new "
            "invitation"
        )
    principal = service.create_principal(
        session, kind=PrincipalKind.user, name=row.name, actor=None
    )
    binding = service.bind_role(
        session,
        principal_id=principal.id,
        role=Role(row.role),
        project_id=row.project_id,
        actor=row.created_by,
    )
    key = service.create_api_key(
        session,
        pepper=pepper,
        principal_id=principal.id,
        name=key_name,
        ttl_days=ttl_days,
        actor=principal.id,
        project_id=row.project_id,
    )
    row.accepted_by = principal.id
    session.add(row)
    session.flush()
    ledger.emit(
        session,
        type="invitation.accepted",
        actor=principal.id,
        project=row.project_id,
        objects={
            "invitation": row.id,
            "principal": principal.id,
            "binding": binding.id,
            "api_key": key.id,
        },
        details={"role": row.role},
    )
    return InvitationAccepted(
        principal_id=principal.id,
        name=principal.name,
        project_id=row.project_id,
        role=row.role,
        api_key=key,
    )
