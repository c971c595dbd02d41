"""The stored OIDC sign-in of a profile: its access token, refreshed before it expires,
and the provider calls that sign-in (``oidc_login``) and refresh share.

Below ``client`` (which asks for the current token before each request) and above
``profiles`` (where tokens are stored); ``oidc_login`` (the device flow) sits on top.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import jwt
import typer
from rich.markup import escape

from privet.cli import profiles
from privet.cli.output import err

#: Refresh this long before the access token expires, so a request never carries a token
#: that expires in flight (or by a little clock skew).
REFRESH_MARGIN = timedelta(seconds=30)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def abort(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as an error and exit with ``code``."""
    err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def current_token(*, profile: str) -> str:
    """The profile's access token, refreshed first when it expires within the margin (one
    process at a time refreshes: a rotated refresh token is spent by the first use)."""
    entry = profiles.load()["profiles"].get(profile, {})
    if not _due(entry):
        return str(entry["access_token"])
    with _locked():
        data = profiles.load()
        entry = data["profiles"].get(profile, {})
        if not _due(entry):  # another process refreshed it meanwhile
            return str(entry["access_token"])
        expires = _parse(entry.get("expires_at"))
        if not entry.get("refresh_token"):
            if expires is not None and expires > _now():
                return str(entry["access_token"])  # nothing better: use it to the end
            abort(
                f"the OIDC sign-in of profile {profile!r} expired at "
                f"{entry.get('expires_at')} and holds no refresh token: sign in again with "
                f"`privet login --url {entry.get('url')} --profile {profile}` (some "
                'providers issue refresh tokens only for --scope "openid offline_access")'
            )
        tokens = _refresh(entry, profile=profile)
        entry = {
            **entry,
            "access_token": tokens["access_token"],
            "refresh_token": tokens.get("refresh_token") or entry["refresh_token"],
            "expires_at": expiry(tokens),
        }
        data["profiles"][profile] = {k: v for k, v in entry.items() if v}
        profiles.save(data)
        return str(entry["access_token"])


# --- the provider -----------------------------------------------------------------------


@contextmanager
def provider() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, headers={"Accept": "application/json"}) as http:
        try:
            yield http
        except httpx.TransportError as exc:
            abort(
                f"cannot reach the OIDC provider: {exc}. Check the network, or ask the "
                "server's operator whether PRIVET_OIDC_ISSUER is right"
            )


def check_endpoint(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        abort(f"the OIDC provider's discovery document has no {name}")
    parts = urlsplit(value)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return value
    abort(
        f"the OIDC provider's {name} {value} is not https: refusing to send codes or tokens "
        "over plain HTTP"
    )


def post_form(
    http: httpx.Client, endpoint: str, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    response = http.post(endpoint, data=form)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        abort(f"the OIDC provider's {endpoint} answered HTTP {response.status_code}, not JSON")
    return response.status_code, body


def oauth_error(body: dict[str, Any]) -> str:
    described = f": {body['error_description']}" if body.get("error_description") else ""
    return f"{body.get('error', 'unknown error')}{described}"


def checked_tokens(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("access_token"):
        abort("the OIDC provider's token response has no access_token")
    kind = str(body.get("token_type") or "Bearer")
    if kind.lower() != "bearer":
        abort(f"the OIDC provider issued a {kind!r} token; privet accepts bearer tokens only")
    return body


def _refresh(entry: dict[str, Any], *, profile: str) -> dict[str, Any]:
    again = f"sign in again with `privet login --url {entry.get('url')} --profile {profile}`"
    endpoint = entry.get("oidc_token_endpoint")
    if not endpoint or not entry.get("oidc_client_id"):
        abort(f"profile {profile!r} does not say where to refresh its token: {again}")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(entry["refresh_token"]),
        "client_id": str(entry["oidc_client_id"]),
    }
    with provider() as http:
        status, body = post_form(http, check_endpoint("token_endpoint", endpoint), form)
    if status != 200:
        abort(
            f"the OIDC provider refused to refresh the sign-in of profile {profile!r} "
            f"({oauth_error(body)}): {again}"
        )
    return checked_tokens(body)


# --- expiry and locking -----------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _due(entry: dict[str, Any]) -> bool:
    expires = _parse(entry.get("expires_at"))
    return expires is not None and expires - REFRESH_MARGIN <= _now()


def expiry(tokens: dict[str, Any]) -> str | None:
    """When the access token expires: `expires_in`, else the JWT's `exp` (read, not
    verified: only to know when to refresh; the server verifies it), else unknown."""
    if tokens.get("expires_in"):
        at = _now() + timedelta(seconds=int(tokens["expires_in"]))
    else:
        try:
            claims = jwt.decode(str(tokens["access_token"]), options={"verify_signature": False})
            at = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return None
    return at.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@contextmanager
def _locked() -> Iterator[None]:
    """An exclusive lock beside the config file, held while a token is refreshed."""
    path = profiles.config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(".config.lock"), "a", opener=_private) as fh:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
