"""`privet login` with OIDC: the device authorization grant (RFC 8628). Refreshing the
stored token before it expires is `oidc_tokens`'s.

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

import time
from typing import Any

import httpx

from privet.cli import client as server
from privet.cli.oidc_tokens import (
    abort,
    check_endpoint,
    checked_tokens,
    expiry,
    oauth_error,
    post_form,
    provider,
)
from privet.cli.output import err

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _say(message: str) -> None:
    """Instructions for the person, on stderr (stdout stays for results)."""
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def advertised(url: str) -> dict[str, Any] | None:
    """The server's OIDC sign-in settings, or None when it accepts API keys only (or is
    older than `GET /v1/auth/config`)."""
    try:
        with server._http(url, None) as http:
            response = http.get("/v1/auth/config")
    except httpx.TransportError as exc:
        abort(
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
        abort(
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
        abort(
            f"the server at {url} names no OIDC client id for the device flow: ask its "
            "operator to set PRIVET_OIDC_CLIENT_ID, or pass --client-id",
            2,
        )
    issuer = str(config["issuer"])
    with provider() as http:
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
        "expires_at": expiry(tokens),
        "oidc_issuer": issuer,
        "oidc_client_id": client_id,
        "oidc_token_endpoint": endpoints["token_endpoint"],
    }
    return {k: v for k, v in entry.items() if v}, me


def _discover(http: httpx.Client, issuer: str) -> dict[str, str]:
    where = check_endpoint("issuer", issuer).rstrip("/") + "/.well-known/openid-configuration"
    response = http.get(where)
    if response.status_code != 200:
        abort(f"the OIDC discovery document {where} answered HTTP {response.status_code}")
    try:
        document = dict(response.json())
    except ValueError:
        abort(f"the OIDC discovery document {where} is not JSON")
    if document.get("issuer") != issuer:
        abort(
            f"the OIDC discovery document at {where} names the issuer "
            f"{document.get('issuer')!r}, but the server trusts tokens from {issuer!r}: "
            "refusing to sign in there (the server's PRIVET_OIDC_ISSUER must be the "
            "provider's issuer exactly)"
        )
    if not document.get("device_authorization_endpoint"):
        abort(
            f"the OIDC provider {issuer} offers no device authorization endpoint: enable the "
            "device flow for the client there, or sign in with an API key (--api-key)"
        )
    return {
        name: check_endpoint(name, document.get(name))
        for name in ("device_authorization_endpoint", "token_endpoint")
    }


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
    status, grant = post_form(http, endpoints["device_authorization_endpoint"], form)
    if status != 200 or "device_code" not in grant or "user_code" not in grant:
        abort(f"the OIDC provider refused to start the device flow ({oauth_error(grant)})")
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
            abort(f"the sign-in code {code} expired before it was confirmed: {again}")
        status, body = post_form(http, endpoints["token_endpoint"], poll)
        if status == 200:
            return checked_tokens(body)
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 3.5: for this and all later polls
            continue
        if error == "expired_token":
            abort(f"the sign-in code {code} expired before it was confirmed: {again}")
        if error == "access_denied":
            abort(
                "the sign-in was refused at the OIDC provider (access_denied): run `privet "
                "login` again and approve it, or sign in with an API key (--api-key)"
            )
        abort(f"the OIDC provider refused the sign-in ({oauth_error(body)})")
