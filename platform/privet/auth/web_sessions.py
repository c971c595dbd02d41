"""Server-side browser sessions of the web console.

The browser holds a random session token in a cookie; the database keeps only its SHA-256
digest, so a copy of the table signs nobody in. A session stands for the API key the
person signed in with: every request re-reads that key (revoked or expired ends the
session) and the roles bound now. A session begun by OIDC sign-in has no key: it keeps
the roles its ID token carried and re-reads the roles bound now. Idle and absolute
expiry; sign-out ends it for good.
The CSRF token is derived from the session token (HMAC), so it is bound to one session
and needs no storage.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, select

from privet import ledger
from privet.auth import service
from privet.auth.identity import Identity
from privet.auth.settings import ConsoleSessionSettings
from privet.auth.tables import ApiKey
from privet.kit.errors import UnauthenticatedError
from privet.kit.ids import new_id, utcnow
from privet.kit.types import UTCDateTime

TOKEN_PREFIX = "pvs"  # noqa: S105 (a prefix that names the token kind, not a secret)


class ConsoleSession(SQLModel, table=True):
    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=40)
    digest: str = Field(max_length=64, unique=True)
    principal_id: str = Field(max_length=40, index=True)
    api_key_id: str = Field(max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    method: str = Field(default="api_key", max_length=10)  # "api_key" | "oidc"
    #: OIDC: the role bindings the ID token carried, [[role, project id or null], ...].
    token_bindings: list[Any] | None = Field(default=None, sa_column=Column(JSON()))


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: its row and the identity it acts as."""

    row: ConsoleSession
    identity: Identity


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The form token of one session: an HMAC of the session token (never the token)."""
    return hmac.new(token.encode(), b"privet-console-csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_token(token), presented)


def start(
    session: Session,
    *,
    pepper: bytes,
    api_key: str,
    settings: ConsoleSessionSettings,
) -> tuple[str, SignedIn]:
    """Sign in with an API key (the same key the CLI uses): a new session and its token,
    shown to nobody but the browser's cookie. 401 for a bad key, like the API."""
    identity = service.authenticate_api_key(session, pepper=pepper, presented=api_key)
    return open_session(session, identity=identity, settings=settings)


def open_session(
    session: Session,
    *,
    identity: Identity,
    settings: ConsoleSessionSettings,
    token_bindings: frozenset[tuple[str, str | None]] | None = None,
) -> tuple[str, SignedIn]:
    """A new session for an authenticated identity (API key, or OIDC with the roles its
    ID token carried): one row, one `console_session.started` event."""
    token = f"{TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    row = ConsoleSession(
        id=new_id("cs"),
        digest=digest(token),
        principal_id=identity.principal_id,
        api_key_id=identity.credential_id or "",
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        method=identity.method,
        token_bindings=None if token_bindings is None else sorted(map(list, token_bindings)),
    )
    session.add(row)
    session.flush()
    objects = {"console_session": row.id}
    if row.api_key_id:
        objects["api_key"] = row.api_key_id
    ledger.emit(
        session,
        type="console_session.started",
        actor=identity.principal_id,
        objects=objects,
        details={"expires_at": row.expires_at.isoformat(), "method": row.method},
    )
    return token, SignedIn(row, identity)


def resolve(
    session: Session, *, token: str, settings: ConsoleSessionSettings, now: datetime
) -> SignedIn:
    """The live session of a cookie's token, or a 401 that says why it is not."""
    row = session.exec(select(ConsoleSession).where(ConsoleSession.digest == digest(token))).first()
    if row is None or row.ended_at is not None:
        raise UnauthenticatedError("no console session: sign in")
    if row.expires_at <= now:
        raise UnauthenticatedError("the console session has expired: sign in again")
    if row.last_seen_at + timedelta(minutes=settings.session_idle_minutes) <= now:
        raise UnauthenticatedError("the console session expired after inactivity: sign in again")
    if row.method == "oidc":
        return SignedIn(row, _oidc_identity(session, row=row))
    key = session.get(ApiKey, row.api_key_id)
    if key is None:
        raise UnauthenticatedError("no console session: sign in")
    return SignedIn(row, service.key_identity(session, key=key, now=now))


def _oidc_identity(session: Session, *, row: ConsoleSession) -> Identity:
    """An OIDC session's identity: its ID token's roles and the roles bound now."""
    principal = service.get_principal(session, principal_id=row.principal_id)
    carried = frozenset((str(role), project) for role, project in row.token_bindings or [])
    return Identity(
        principal_id=principal.id,
        kind=principal.kind,
        name=principal.name,
        bindings=carried | service.bindings_of(session, principal_id=principal.id),
        method="oidc",
        accountable_id=principal.accountable_human_id,
    )


def touch(session: Session, *, row: ConsoleSession, now: datetime) -> None:
    """Move the idle deadline (written at most once a minute, not on every request)."""
    if now - row.last_seen_at >= timedelta(minutes=1):
        row.last_seen_at = now
        session.add(row)
        session.flush()


def end(session: Session, *, row: ConsoleSession, actor: str) -> None:
    """Sign out: the session is ended for good (its cookie, replayed, signs nobody in)."""
    row.ended_at = utcnow()
    session.add(row)
    session.flush()
    ledger.emit(
        session,
        type="console_session.ended",
        actor=actor,
        objects={"console_session": row.id},
    )
