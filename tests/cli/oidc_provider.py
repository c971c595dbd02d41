"""A small but real OpenID provider for the device authorization grant (RFC 8628) and the
authorization-code grant with PKCE (the console's sign-in), served over HTTP by uvicorn on
127.0.0.1 in a thread: discovery, device authorization, an authorization endpoint that
approves at once, token (device code, authorization code with the S256 verifier checked,
one use; refresh token grants) and a JWKS. Tokens are RS256 JWTs signed by a key
generated per test; `jwks_file` is the same JWKS as a file, for PRIVET_OIDC_JWKS.

What the person at the browser does is scripted: `plan` lists the answer to each poll of
the token endpoint (`pending`, `slow_down`, `approve`, `deny`, `expire`); the last entry
repeats. Every request is recorded in `requests` so tests see what the CLI sent and when.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

KID = "test-idp-k1"


@dataclass
class Recorded:
    path: str
    form: dict[str, str]
    at: float


@dataclass
class Provider:
    issuer: str
    jwks_file: Path
    client_id: str = "privet-cli"
    audience: str = "privet-api"
    subject: str = "alice@bank.example"
    name: str = "Alice Example"
    roles: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=lambda: ["approve"])
    interval: int = 1
    device_expires_in: int = 600
    token_ttl: int = 300
    issue_refresh_tokens: bool = True
    console_client_id: str = "privet-console"
    id_token_ttl: int = 300
    #: Edits the query of the redirect back to the client (what an attacker on the way
    #: would change); None: sent as issued.
    redirect_edit: Callable[[dict[str, str]], dict[str, str]] | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)  # code → its request
    requests: list[Recorded] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token → subject
    key: Any = None

    def polls(self) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path == "/token" and r.form.get("grant_type", "").endswith("device_code")
        ]

    def refreshes(self) -> list[Recorded]:
        return [
            r
            for r in self.requests
            if r.path == "/token" and r.form.get("grant_type") == "refresh_token"
        ]

    def access_token(self, ttl: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "name": self.name,
            "iat": now,
            "exp": now + (self.token_ttl if ttl is None else ttl),
            "privet_roles": self.roles,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def id_token(self, *, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.console_client_id,
            "sub": self.subject,
            "name": self.name,
            "nonce": nonce,
            "iat": now,
            "exp": now + self.id_token_ttl,
            "privet_roles": self.roles,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    def _code_grant(self, form: dict[str, str]) -> dict[str, Any] | tuple[str, str]:
        """An ID token for a code used once, with the verifier of its S256 challenge."""
        grant = self.codes.pop(form.get("code", ""), None)  # spent even when refused
        if grant is None:
            return ("invalid_grant", "unknown or already used authorization code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return ("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return ("invalid_grant", "PKCE verification failed: the code_verifier does not match")
        return {"id_token": self.id_token(nonce=grant["nonce"]), "token_type": "Bearer"}

    def _tokens(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token(),
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
        }
        if self.issue_refresh_tokens:
            refresh = secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = self.subject
            body["refresh_token"] = refresh
        return body

    def app(self) -> Starlette:
        def error(code: str, description: str, status: int = 400) -> JSONResponse:
            return JSONResponse({"error": code, "error_description": description}, status)

        async def record(request: Request) -> dict[str, str]:
            form = {k: str(v) for k, v in (await request.form()).items()}
            self.requests.append(Recorded(request.url.path, form, time.monotonic()))
            return form

        async def discovery(request: Request) -> JSONResponse:
            await record(request)
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "device_authorization_endpoint": f"{self.issuer}/device",
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "grant_types_supported": [
                        "urn:ietf:params:oauth:grant-type:device_code",
                        "refresh_token",
                    ],
                }
            )

        async def device(request: Request) -> JSONResponse:
            form = await record(request)
            if form.get("client_id") != self.client_id:
                return error("invalid_client", "unknown client", 401)
            return JSONResponse(
                {
                    "device_code": "dev-" + secrets.token_urlsafe(16),
                    "user_code": "WDJB-MJHT",
                    "verification_uri": f"{self.issuer}/activate",
                    "verification_uri_complete": f"{self.issuer}/activate?user_code=WDJB-MJHT",
                    "expires_in": self.device_expires_in,
                    "interval": self.interval,
                }
            )

        async def authorize(request: Request) -> Response:
            """The person approves at once: back to the client with a code and its state."""
            query = dict(request.query_params)
            self.requests.append(Recorded("/authorize", query, time.monotonic()))
            if query.get("client_id") != self.console_client_id:
                return error("invalid_client", "unknown client", 401)
            if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                return error("invalid_request", "PKCE with S256 is required")
            code = "code-" + secrets.token_urlsafe(16)
            self.codes[code] = {
                "challenge": query["code_challenge"],
                "redirect_uri": query.get("redirect_uri", ""),
                "nonce": query.get("nonce", ""),
            }
            answer = {"code": code, "state": query.get("state", "")}
            if self.redirect_edit is not None:
                answer = self.redirect_edit(answer)
            back = query.get("redirect_uri", "") + "?" + urlencode(answer)
            return RedirectResponse(back, status_code=303)

        async def token(request: Request) -> JSONResponse:
            form = await record(request)
            if form.get("grant_type") == "authorization_code":
                if form.get("client_id") != self.console_client_id:
                    return error("invalid_client", "unknown client", 401)
                answer = self._code_grant(form)
                return JSONResponse(answer) if isinstance(answer, dict) else error(*answer)
            if form.get("client_id") != self.client_id:
                return error("invalid_client", "unknown client", 401)
            grant = form.get("grant_type")
            if grant == "refresh_token":
                subject = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
                if subject is None:
                    return error("invalid_grant", "the refresh token is not valid")
                return JSONResponse(self._tokens())  # rotated: the old one is spent
            if grant != "urn:ietf:params:oauth:grant-type:device_code":
                return error("unsupported_grant_type", str(grant))
            step = self.plan.pop(0) if len(self.plan) > 1 else self.plan[0]
            if step == "approve":
                return JSONResponse(self._tokens())
            if step == "pending":
                return error("authorization_pending", "the user has not confirmed yet")
            if step == "slow_down":
                return error("slow_down", "polling too fast")
            if step == "deny":
                return error("access_denied", "the user refused")
            if step == "expire":
                return error("expired_token", "the device code expired")
            raise AssertionError(step)

        async def jwks(request: Request) -> JSONResponse:
            return JSONResponse(json.loads(self.jwks_file.read_text()))

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/device", device, methods=["POST"]),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
            ]
        )


class Running:
    """The provider's uvicorn server on a socket bound before the app is built."""

    def __init__(self, directory: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update(kid=KID, use="sig", alg="RS256")
        jwks_file = directory / "idp-jwks.json"
        jwks_file.write_text(json.dumps({"keys": [jwk]}))
        self.provider = Provider(issuer=f"http://127.0.0.1:{port}", jwks_file=jwks_file, key=key)
        config = uvicorn.Config(self.provider.app(), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Provider:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the test OIDC provider did not start"
            time.sleep(0.01)
        return self.provider

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
