"""`privet login` with OIDC: the device authorization grant (RFC 8628), and refreshing the
stored token before it expires.

The server says how to sign in (`GET /v1/auth/config`: issuer, audience, public client
id); the issuer's discovery document gives the device authorization and token endpoints.
The person confirms a short code in any browser, the CLI polls the token endpoint at the
interval the provider asks for (slower after `slow_down`), checks the access token against
`GET /v1/me` and only then stores it. Nothing is stored when the sign-in is refused,
expires, or yields a token the server does not accept.

Guards: the discovery document must name the issuer the server trusts (OpenID Connect
Discovery 1.0, section 4.3), and the provider's endpoints must be https (plain http only on
the loopback interface), so codes and tokens never cross a network in clear.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import jwt
import typer
from rich.markup import escape

from privet.cli import client as server
from privet.cli import profiles

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Refresh this long before the access token expires, so a request never carries a token
#: that expires in flight (or by a little clock skew).
REFRESH_MARGIN = timedelta(seconds=30)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _fail(message: str, code: int = 1) -> NoReturn:
    server.err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _say(message: str) -> None:
    """Instructions for the person, on stderr (stdout stays for results)."""
    server.err.print(message, highlight=False, markup=False, soft_wrap=True)


def advertised(url: str) -> dict[str, Any] | None:
    """The server's OIDC sign-in settings, or None when it accepts API keys only (or is
    older than `GET /v1/auth/config`)."""
    try:
        with server._http(url, None) as http:
            response = http.get("/v1/auth/config")
    except httpx.TransportError as exc:
        _fail(
            f"cannot reach the server at {url}: {exc}. Is `privet serve` running, and is "
            "the URL right?",
            2,
        )
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        server.fail(response)
    oidc: dict[str, Any] | None = response.json().get("oidc")
    return oidc


def device_login(
    url: str, *, client_id: str | None, scope: str, required: bool
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Sign in with the device flow; returns (profile entry, `GET /v1/me`). Without
    `required`, returns None when the server offers no OIDC sign-in the CLI can run."""
    config = advertised(url)
    if config is None:
        if not required:
            return None
        _fail(
            f"the server at {url} accepts no OIDC tokens (PRIVET_OIDC_ISSUER, _AUDIENCE and "
            "_JWKS are unset there): sign in with an API key instead, "
            f"`privet login --url {url} --api-key pvt_...`",
            2,
        )
    client_id = client_id or config.get("client_id")
    if not client_id:
        if not required:
            _say(
                "the server accepts OIDC tokens but names no client id for `privet login` "
                "(PRIVET_OIDC_CLIENT_ID): asking for an API key instead"
            )
            return None
        _fail(
            f"the server at {url} names no OIDC client id for the device flow: ask its "
            "operator to set PRIVET_OIDC_CLIENT_ID, or pass --client-id",
            2,
        )
    issuer = str(config["issuer"])
    with _provider() as http:
        endpoints = _discover(http, issuer)
        tokens = _device_flow(
            http, endpoints, client_id=client_id, scope=scope, audience=config.get("audience")
        )
    access = str(tokens["access_token"])
    me = server.call_with(url, access, "GET", "/v1/me")  # a refused token is not stored
    entry = {
        "url": url,
        "method": "oidc",
        "access_token": access,
        "refresh_token": tokens.get("refresh_token"),
        "expires_at": _expiry(tokens),
        "oidc_issuer": issuer,
        "oidc_client_id": client_id,
        "oidc_token_endpoint": endpoints["token_endpoint"],
    }
    return {k: v for k, v in entry.items() if v}, me


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
            _fail(
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
            "expires_at": _expiry(tokens),
        }
        data["profiles"][profile] = {k: v for k, v in entry.items() if v}
        profiles.save(data)
        return str(entry["access_token"])


# --- the provider -----------------------------------------------------------------------


@contextmanager
def _provider() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, headers={"Accept": "application/json"}) as http:
        try:
            yield http
        except httpx.TransportError as exc:
            _fail(
                f"cannot reach the OIDC provider: {exc}. Check the network, or ask the "
                "server's operator whether PRIVET_OIDC_ISSUER is right"
            )


def _check_endpoint(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        _fail(f"the OIDC provider's discovery document has no {name}")
    parts = urlsplit(value)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return value
    _fail(
        f"the OIDC provider's {name} {value} is not https: refusing to send codes or tokens "
        "over plain HTTP"
    )


def _discover(http: httpx.Client, issuer: str) -> dict[str, str]:
    where = _check_endpoint("issuer", issuer).rstrip("/") + "/.well-known/openid-configuration"
    response = http.get(where)
    if response.status_code != 200:
        _fail(f"the OIDC discovery document {where} answered HTTP {response.status_code}")
    try:
        document = dict(response.json())
    except ValueError:
        _fail(f"the OIDC discovery document {where} is not JSON")
    if document.get("issuer") != issuer:
        _fail(
            f"the OIDC discovery document at {where} names the issuer "
            f"{document.get('issuer')!r}, but the server trusts tokens from {issuer!r}: "
            "refusing to sign in there (the server's PRIVET_OIDC_ISSUER must be the "
            "provider's issuer exactly)"
        )
    if not document.get("device_authorization_endpoint"):
        _fail(
            f"the OIDC provider {issuer} offers no device authorization endpoint: enable the "
            "device flow for the client there, or sign in with an API key (--api-key)"
        )
    return {
        name: _check_endpoint(name, document.get(name))
        for name in ("device_authorization_endpoint", "token_endpoint")
    }


def _post(http: httpx.Client, endpoint: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    response = http.post(endpoint, data=form)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        _fail(f"the OIDC provider's {endpoint} answered HTTP {response.status_code}, not JSON")
    return response.status_code, body


def _oauth_error(body: dict[str, Any]) -> str:
    described = f": {body['error_description']}" if body.get("error_description") else ""
    return f"{body.get('error', 'unknown error')}{described}"


def _device_flow(
    http: httpx.Client,
    endpoints: dict[str, str],
    *,
    client_id: str,
    scope: str,
    audience: str | None,
) -> dict[str, Any]:
    form = {"client_id": client_id, "scope": scope}
    if audience:
        form["audience"] = audience  # providers that mint API tokens per audience need it
    status, grant = _post(http, endpoints["device_authorization_endpoint"], form)
    if status != 200 or "device_code" not in grant or "user_code" not in grant:
        _fail(f"the OIDC provider refused to start the device flow ({_oauth_error(grant)})")
    code, page = str(grant["user_code"]), grant.get("verification_uri_complete")
    plain_page = grant.get("verification_uri") or grant.get("verification_url")
    lifetime = int(grant.get("expires_in") or 600)
    if page:
        _say(f"To sign in, open {page} in a browser and check that it shows the code {code}.")
    else:
        _say(f"To sign in, open {plain_page} in a browser and enter the code {code}.")
    _say(f"The code expires in {max(lifetime // 60, 1)} minute(s). Waiting for you...")
    interval = int(grant.get("interval") or 5)
    deadline = time.monotonic() + lifetime
    again = f"run `privet login` again and confirm the code within {lifetime // 60} minute(s)"
    poll = {"grant_type": DEVICE_GRANT, "device_code": str(grant["device_code"])}
    poll["client_id"] = client_id
    while True:
        _wait(interval)
        if time.monotonic() > deadline:
            _fail(f"the sign-in code {code} expired before it was confirmed: {again}")
        status, body = _post(http, endpoints["token_endpoint"], poll)
        if status == 200:
            return _checked_tokens(body)
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 3.5: for this and all later polls
            continue
        if error == "expired_token":
            _fail(f"the sign-in code {code} expired before it was confirmed: {again}")
        if error == "access_denied":
            _fail(
                "the sign-in was refused at the OIDC provider (access_denied): run `privet "
                "login` again and approve it, or sign in with an API key (--api-key)"
            )
        _fail(f"the OIDC provider refused the sign-in ({_oauth_error(body)})")


def _checked_tokens(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("access_token"):
        _fail("the OIDC provider's token response has no access_token")
    kind = str(body.get("token_type") or "Bearer")
    if kind.lower() != "bearer":
        _fail(f"the OIDC provider issued a {kind!r} token; privet accepts bearer tokens only")
    return body


def _refresh(entry: dict[str, Any], *, profile: str) -> dict[str, Any]:
    again = f"sign in again with `privet login --url {entry.get('url')} --profile {profile}`"
    endpoint = entry.get("oidc_token_endpoint")
    if not endpoint or not entry.get("oidc_client_id"):
        _fail(f"profile {profile!r} does not say where to refresh its token: {again}")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": str(entry["refresh_token"]),
        "client_id": str(entry["oidc_client_id"]),
    }
    with _provider() as http:
        status, body = _post(http, _check_endpoint("token_endpoint", endpoint), form)
    if status != 200:
        _fail(
            f"the OIDC provider refused to refresh the sign-in of profile {profile!r} "
            f"({_oauth_error(body)}): {again}"
        )
    return _checked_tokens(body)


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


def _expiry(tokens: dict[str, Any]) -> str | None:
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
