"""OIDC bearer JWTs: validated against a configured issuer, audience and JWKS.

The JWKS comes from a file (air-gapped deployments, tests) or an http(s) URL. Only
asymmetric algorithms are accepted, so `alg: none` and HMAC-with-public-key tricks fail.

`sign_in_config` is what a client needs to get such a token before it has any credential
(`privet login` runs the device authorization grant with it): issuer, audience and the
public client id. All three are public by nature; no secret is advertised.
"""

from __future__ import annotations

import hmac
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient
from pydantic import BaseModel

from privet.kit.errors import UnauthenticatedError

ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


@dataclass(frozen=True, slots=True)
class Claims:
    """What privet takes from a validated token."""

    issuer: str
    subject: str
    name: str
    bindings: frozenset[tuple[str, str | None]]
    expires_at: datetime


class OidcSignIn(BaseModel):
    """How to obtain a token this gateway accepts."""

    issuer: str
    audience: str
    client_id: str | None  # None: the operator set no PRIVET_OIDC_CLIENT_ID


class AuthConfigPublic(BaseModel):
    oidc: OidcSignIn | None  # None: only API keys are accepted


def sign_in_config(verifier: OidcVerifier | None, *, client_id: str | None) -> AuthConfigPublic:
    """The sign-in methods a client may use, from the verifier actually in force (so it
    never advertises an issuer whose tokens would be refused)."""
    if verifier is None:
        return AuthConfigPublic(oidc=None)
    return AuthConfigPublic(
        oidc=OidcSignIn(issuer=verifier.issuer, audience=verifier.audience, client_id=client_id)
    )


class OidcVerifier:
    """Validates bearer tokens; one instance per process (it caches the JWKS)."""

    def __init__(
        self, *, issuer: str, audience: str, jwks: str, subject_claim: str, roles_claim: str
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self.subject_claim, self.roles_claim = subject_claim, roles_claim
        self._lock = threading.Lock()
        self._client: PyJWKClient | None = None
        self._file_keys: dict[str, PyJWK] | None = None
        if jwks.startswith(("http://", "https://")):
            self._client = PyJWKClient(jwks, cache_keys=True, lifespan=300)
        else:
            self._file_keys = self._load_file(Path(jwks))

    @staticmethod
    def _load_file(path: Path) -> dict[str, PyJWK]:
        data = json.loads(path.read_text())
        keys: dict[str, PyJWK] = {}
        for entry in data.get("keys", []):
            if "kid" not in entry:
                raise ValueError(f"JWKS file {path}: every key needs a 'kid'")
            keys[entry["kid"]] = PyJWK(entry)
        return keys

    def _key_for(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the bearer token is malformed: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise UnauthenticatedError(f"the bearer token's algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not kid:
            raise UnauthenticatedError("the bearer token has no 'kid' header")
        if self._file_keys is not None:
            key = self._file_keys.get(kid)
            if key is None:
                raise UnauthenticatedError(f"the bearer token's key id {kid!r} is unknown")
            return key.key
        assert self._client is not None
        try:
            return self._client.get_signing_key(kid).key
        except jwt.PyJWKClientError as exc:
            raise UnauthenticatedError(f"the bearer token's key id {kid!r} is unknown") from exc

    def verify(
        self, token: str, *, audience: str | None = None, nonce: str | None = None
    ) -> Claims:
        """Validated claims, or a 401 that says precisely what was wrong. The console's
        sign-in checks an ID token here too: its audience is the console's client id and
        it must carry the nonce of that sign-in (a token minted for another is refused)."""
        key = self._key_for(token)
        try:
            payload = jwt.decode(
                token,
                key=key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=audience or self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", self.subject_claim]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise UnauthenticatedError("the bearer token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise UnauthenticatedError("the bearer token's audience is not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise UnauthenticatedError("the bearer token's issuer is not accepted") from exc
        except jwt.ImmatureSignatureError as exc:
            raise UnauthenticatedError("the bearer token is not valid yet") from exc
        except jwt.InvalidSignatureError as exc:
            raise UnauthenticatedError("the bearer token's signature is invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise UnauthenticatedError(f"the bearer token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the bearer token is invalid: {exc}") from exc
        if nonce is not None and not hmac.compare_digest(str(payload.get("nonce", "")), nonce):
            raise UnauthenticatedError("the ID token's nonce is not the one of this sign-in")
        subject = str(payload[self.subject_claim])
        return Claims(
            issuer=self.issuer,
            subject=subject,
            name=str(payload.get("name") or payload.get("preferred_username") or subject),
            bindings=parse_role_claims(payload.get(self.roles_claim, [])),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=UTC),
        )


def parse_role_claims(value: Any) -> frozenset[tuple[str, str | None]]:
    """`['ml_engineer@prj_x', 'auditor']` → {(role, project id or None)}; bad entries are
    refused rather than guessed."""
    from privet.auth.tables import Role

    if not isinstance(value, list):
        raise UnauthenticatedError("the bearer token's roles claim must be a list of strings")
    bindings: set[tuple[str, str | None]] = set()
    for item in value:
        if not isinstance(item, str):
            raise UnauthenticatedError("the bearer token's roles claim must be strings")
        role, _, project = item.partition("@")
        if role not in Role.__members__:
            raise UnauthenticatedError(f"the bearer token names an unknown role {role!r}")
        bindings.add((role, project or None))
    return frozenset(bindings)
