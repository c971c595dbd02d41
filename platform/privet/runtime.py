"""The process-wide objects a running platform needs, built once from Settings.

The gateway keeps one Runtime on `app.state`; workers and the CLI build their own. Nothing
here imports the web framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from privet.auth.oidc import OidcVerifier
from privet.authorization import CedarAuthorizer, build_authorizer
from privet.config import Settings
from privet.crypto.blobs import BlobStore, LocalBlobStore
from privet.crypto.providers import (
    KeyProvider,
    ensure_local_master_key,
    key_provider_from_settings,
)
from privet.crypto.settings import CryptoSettings
from privet.db import get_engine
from privet.kit.secretfiles import ensure_private_dir, read_or_create_secret


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    api_key_pepper: bytes
    oidc: OidcVerifier | None
    authorizer: CedarAuthorizer
    key_provider: KeyProvider
    blobs: BlobStore


def pepper_path(settings: Settings) -> Any:
    return settings.secrets_dir / "api_key_pepper"


def build_runtime(settings: Settings) -> Runtime:
    """Open the database and load (or create) the local secrets."""
    ensure_private_dir(settings.home)
    ensure_private_dir(settings.secrets_dir)
    oidc = None
    if settings.oidc_jwks:
        if not (settings.oidc_issuer and settings.oidc_audience):
            raise ValueError("PRIVET_OIDC_JWKS needs PRIVET_OIDC_ISSUER and PRIVET_OIDC_AUDIENCE")
        oidc = OidcVerifier(
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            jwks=settings.oidc_jwks,
            subject_claim=settings.oidc_subject_claim,
            roles_claim=settings.oidc_roles_claim,
        )
    crypto_settings = CryptoSettings()
    if crypto_settings.key_provider == "local":
        ensure_local_master_key(settings)
    return Runtime(
        settings=settings,
        engine=get_engine(settings.effective_database_url),
        api_key_pepper=read_or_create_secret(pepper_path(settings)),
        oidc=oidc,
        authorizer=build_authorizer(settings),
        key_provider=key_provider_from_settings(settings, crypto_settings),
        blobs=LocalBlobStore(settings.blobs_dir),
    )
