"""The console's OIDC sign-in: the authorization-code flow with PKCE (RFC 7636, S256).

`begin` keeps the state's digest, the nonce and the PKCE verifier server-side, in a row
found by the digest of a random pre-session cookie; the browser is sent to the provider
with only the state, the nonce and the S256 challenge. `finish` takes that row once (a
replayed callback finds it spent), checks the state, exchanges the code with the verifier
and validates the ID token with the API's own `OidcVerifier` (signature via the JWKS, iss,
exp, aud = the console's client id, and this sign-in's nonce). The identity is the one the
API gives the same subject (`service.oidc_identity`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import Column, delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from privet.auth import service, web_sessions
from privet.auth.oidc import OidcVerifier
from privet.auth.settings import ConsoleSessionSettings
from privet.db import session_scope
from privet.kit.errors import ServiceUnavailableError, UnauthenticatedError
from privet.kit.ids import new_id, utcnow
from privet.kit.types import UTCDateTime

#: How long the browser has to come back from the provider.
LOGIN_TTL = timedelta(minutes=10)
HTTP_TIMEOUT_S = 10.0


class ConsoleOidcLogin(SQLModel, table=True):
    """One sign-in in progress (a pre-session): what the callback must match."""

    __tablename__ = "console_oidc_logins"

    id: str = Field(primary_key=True, max_length=40)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the pre-session cookie
    state_digest: str = Field(max_length=64)
    nonce: str = Field(max_length=64)  # travels through the browser anyway: not a secret
    code_verifier: str = Field(max_length=128)
    next_path: str = Field(max_length=500)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


@dataclass(frozen=True, slots=True)
class Provider:
    """The two endpoints the flow needs, from the issuer's discovery document."""

    authorization_endpoint: str
    token_endpoint: str


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 §4.2)."""
    raw = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_discovered: dict[str, Provider] = {}
_lock = threading.Lock()


def discover(issuer: str) -> Provider:
    """The provider's endpoints (cached per process); its discovery document must name
    the issuer privet trusts, exactly."""
    with _lock:
        if issuer in _discovered:
            return _discovered[issuer]
    where = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(where, timeout=HTTP_TIMEOUT_S)
        document = dict(response.json()) if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceUnavailableError(
            f"the OIDC discovery document {where} is unreachable: {exc}"
        ) from exc
    if document.get("issuer") != issuer:
        raise ServiceUnavailableError(
            f"the OIDC discovery document {where} does not name the issuer {issuer!r} "
            "(PRIVET_OIDC_ISSUER must be the provider's issuer exactly)"
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint"):
        value = document.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ServiceUnavailableError(f"the OIDC provider {issuer} names no http(s) {name}")
        endpoints[name] = value
    provider = Provider(**endpoints)
    with _lock:
        _discovered[issuer] = provider
    return provider


def begin(
    session: Session,
    *,
    provider: Provider,
    client_id: str,
    redirect_uri: str,
    next_path: str,
    now: datetime,
) -> tuple[str, str]:
    """A new pre-session: its cookie token and the provider URL to send the browser to.
    Expired pre-sessions are dropped here, so unauthenticated visits cannot pile rows up."""
    session.exec(delete(ConsoleOidcLogin).where(ConsoleOidcLogin.expires_at <= now))  # type: ignore[arg-type]
    pre, state, nonce = (secrets.token_urlsafe(32) for _ in range(3))
    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]: RFC 7636 §4.1
    session.add(
        ConsoleOidcLogin(
            id=new_id("col"),
            digest=_sha256(pre),
            state_digest=_sha256(state),
            nonce=nonce,
            code_verifier=verifier,
            next_path=next_path,
            expires_at=now + LOGIN_TTL,
        )
    )
    session.flush()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    return pre, f"{provider.authorization_endpoint}?{urlencode(query)}"


@dataclass(frozen=True, slots=True)
class Pending:
    """What a spent pre-session held (read before it was marked used)."""

    state_digest: str
    nonce: str
    code_verifier: str
    next_path: str
    expires_at: datetime


def spend(session: Session, *, pre: str | None, now: datetime) -> Pending:
    """This browser's pre-session, marked used: one callback per sign-in, whatever follows
    (the caller commits this before checking anything else)."""
    row = None
    if pre:
        found = select(ConsoleOidcLogin).where(ConsoleOidcLogin.digest == _sha256(pre))
        row = session.exec(found).first()
    if row is None:
        raise UnauthenticatedError(
            "refused: this browser has no OIDC sign-in in progress (start again from the "
            "sign-in page)"
        )
    if row.used_at is not None:
        raise UnauthenticatedError(
            "refused: this sign-in's callback was already used (a replayed code signs nobody in)"
        )
    row.used_at = now
    session.add(row)
    session.flush()
    return Pending(row.state_digest, row.nonce, row.code_verifier, row.next_path, row.expires_at)


def check_state(pending: Pending, *, state: str, now: datetime) -> None:
    if pending.expires_at <= now:
        raise UnauthenticatedError("refused: the OIDC sign-in took too long: start again")
    if not hmac.compare_digest(pending.state_digest, _sha256(state)):
        raise UnauthenticatedError(
            "refused: the callback's state is not the one this browser was sent with "
            "(a forged or crossed sign-in)"
        )


def exchange(
    provider: Provider, *, client_id: str, redirect_uri: str, code: str, verifier: str
) -> str:
    """The ID token for an authorization code, sent with the PKCE verifier."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    try:
        response = httpx.post(provider.token_endpoint, data=form, timeout=HTTP_TIMEOUT_S)
        body: Any = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceUnavailableError(
            f"the OIDC token endpoint did not answer usably: {exc}"
        ) from exc
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error", "?") if isinstance(body, dict) else "?"
        why = body.get("error_description", "") if isinstance(body, dict) else ""
        raise UnauthenticatedError(
            f"refused: the OIDC provider did not accept the authorization code with this "
            f"sign-in's PKCE verifier ({str(error)[:60]}: {str(why)[:200]})"
        )
    token = body.get("id_token")
    if not isinstance(token, str):
        raise UnauthenticatedError("refused: the OIDC provider returned no ID token")
    return token


def finish(
    engine: Engine,
    *,
    verifier: OidcVerifier,
    provider: Provider,
    client_id: str,
    redirect_uri: str,
    pre: str | None,
    state: str,
    code: str,
    settings: ConsoleSessionSettings,
) -> tuple[str, str]:
    """Spend the pre-session, check the state, exchange the code with the verifier,
    validate the ID token and open a console session: its token and where to go next."""
    now = utcnow()
    with session_scope(engine) as session:
        pending = spend(session, pre=pre, now=now)
    check_state(pending, state=state, now=now)
    id_token = exchange(
        provider,
        client_id=client_id,
        redirect_uri=redirect_uri,
        code=code,
        verifier=pending.code_verifier,
    )
    claims = verifier.verify(id_token, audience=client_id, nonce=pending.nonce)
    with session_scope(engine) as session:
        identity = service.oidc_identity(session, claims=claims)
        token, _signed = web_sessions.open_session(
            session, identity=identity, settings=settings, token_bindings=claims.bindings
        )
    return token, pending.next_path
