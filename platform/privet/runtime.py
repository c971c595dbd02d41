"""The process-wide objects a running platform needs, built once from Settings.

The gateway keeps one Runtime on `app.state`; the CLI builds its own. A training worker
builds a `WorkerRuntime`: the database, the key provider and the blob store only. It never
opens the API-key pepper, the ledger signing key or the prediction/pseudonym HMAC secrets
(it needs none of them: it decrypts datasets and encrypts weights with data keys, and its
ledger events are integrated and signed by the gateway's sequencer). Nothing here imports
the web framework.

The runtime is also where packages that must not import each other are wired together:
inference declares the observer it calls on each prediction
(``privet.inference.observer.PredictionObserver``) and the runtime gives it the
``observe`` of its own monitor (``privet.monitoring.MonitorSlot``).

What is per runtime lives here; the few maps that must be one per process (engines per
URL, the ledger's sequencers and writers per database: reached from a session alone, and
shared by every runtime of the process) are ``privet.kit.process_state`` registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from privet.auth.identity_cache import IdentityCache
from privet.auth.oidc import OidcVerifier
from privet.authorization import CedarAuthorizer, build_authorizer
from privet.basemodels.service import resolver as base_model_resolver
from privet.config import Settings
from privet.crypto.blobs import BlobStore, LocalBlobStore
from privet.crypto.providers import (
    KeyProvider,
    ensure_local_master_key,
    key_provider_from_settings,
)
from privet.crypto.settings import get_crypto_settings
from privet.db import get_engine
from privet.inference.observer import PredictionObserver
from privet.kit.secretfiles import ensure_private_dir, read_or_create_secret
from privet.monitoring import MonitorSlot


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    api_key_pepper: bytes
    oidc: OidcVerifier | None
    authorizer: CedarAuthorizer
    key_provider: KeyProvider
    blobs: BlobStore
    #: This runtime's monitor (drift aggregates, decision rules), made on first use.
    monitoring: MonitorSlot
    # Called by the inference service on each predict request (decision rules, drift).
    prediction_observer: PredictionObserver | None = None
    #: API-key identities between requests (valid while the auth epoch holds)
    identities: IdentityCache = field(default_factory=IdentityCache)


def pepper_path(settings: Settings) -> Any:
    return settings.secrets_dir / "api_key_pepper"


def plug_base_model_registry(engine: Engine) -> None:
    """The process catalog (one per process) asks this database's base-model registry for
    names it does not hold: the latest runtime built in the process wins (one per process
    outside tests)."""
    from privet.training.catalog import CATALOG

    CATALOG.resolver = base_model_resolver(engine)


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
    crypto_settings = get_crypto_settings()
    if crypto_settings.key_provider == "local":
        ensure_local_master_key(settings)
    authorizer = build_authorizer(settings)
    monitoring = MonitorSlot(authorizer.engine)
    engine = get_engine(settings.effective_database_url)
    plug_base_model_registry(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        api_key_pepper=read_or_create_secret(pepper_path(settings)),
        oidc=oidc,
        authorizer=authorizer,
        key_provider=key_provider_from_settings(settings, crypto_settings),
        blobs=LocalBlobStore(settings.blobs_dir),
        monitoring=monitoring,
        prediction_observer=monitoring.observe,
    )


@dataclass
class WorkerRuntime:
    """What a training worker needs, and nothing more (see the module docstring)."""

    settings: Settings
    engine: Engine
    key_provider: KeyProvider
    blobs: BlobStore
    authorizer: CedarAuthorizer  # public policy files: the version recorded on a model


def build_worker_runtime(settings: Settings) -> WorkerRuntime:
    """Open the database and the key provider; read no other secret. The local master key
    must exist already (the gateway or `privet init` creates it): a worker never creates
    one."""
    crypto_settings = get_crypto_settings()
    if crypto_settings.key_provider == "local":
        from privet.crypto.providers import LocalKeyProvider, local_kek_dir

        directory = local_kek_dir(settings)
        if not directory.is_dir():
            raise RuntimeError(
                f"no local master key at {directory}: start the gateway (or run `privet "
                "init`) first, or mount the key directory into the worker"
            )
        provider: KeyProvider = LocalKeyProvider(directory)
    else:
        provider = key_provider_from_settings(settings, crypto_settings)
    engine = get_engine(settings.effective_database_url)
    plug_base_model_registry(engine)
    return WorkerRuntime(
        settings=settings,
        engine=engine,
        authorizer=build_authorizer(settings),
        key_provider=provider,
        blobs=LocalBlobStore(settings.blobs_dir),
    )
