"""The platform's core Settings, read from PRIVET_* environment variables, and the one way
every package reads its own settings.

Every default is the embedded mode: SQLite and key files under PRIVET_HOME, a local worker.

Settings live beside the code they configure (``privet.config`` for the core, each
domain's ``settings.py`` for the rest), and every one of them ends in the same getter::

    @settings_getter
    def get_x_settings() -> XSettings:
        return XSettings()

The environment of a running process does not change, so it is read once per process; a
process that needs other values is restarted with them. Tests change the environment
between and inside tests: ``clear_settings_caches()`` makes every getter read it again
(tests/conftest.py calls it before and after each test; a test that sets a PRIVET_*
variable part-way through calls it after doing so).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import _lru_cache_wrapper, lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "clear_settings_caches", "get_settings", "settings_getter"]

T = TypeVar("T")

#: Every getter made by ``settings_getter``, so that ``clear_settings_caches`` needs to
#: know no package.
_getters: list[_lru_cache_wrapper[object]] = []


def settings_getter(read: Callable[[], T]) -> _lru_cache_wrapper[T]:
    """Cache ``read`` (it takes no arguments: one value per process) and register it with
    ``clear_settings_caches``."""
    cached = lru_cache(maxsize=1)(read)
    _getters.append(cached)
    return cached


def clear_settings_caches() -> None:
    """Forget every cached settings object: the next read sees the environment as it is."""
    for getter in _getters:
        getter.cache_clear()


class Settings(BaseSettings):
    """Platform configuration. Field docs are the reference the README points to."""

    model_config = SettingsConfigDict(env_prefix="PRIVET_", extra="ignore")

    home: Path = Field(default=Path(".privet"), description="Directory for keys, blobs and SQLite.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///$PRIVET_HOME/privet.db."
    )
    host: str = Field(default="127.0.0.1", description="Address `privet serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `privet serve` binds to.")
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest JSON request body accepted (bytes)."
    )
    max_upload_bytes: int = Field(
        default=2 << 30, ge=1024, description="Largest dataset upload accepted (bytes)."
    )
    active_requests: int = Field(
        default=8,
        ge=1,
        le=32,
        description="API requests of a gateway process that do their work (authenticate, "
        "read, decide, commit) at once; later ones wait their turn in arrival order, "
        "holding no thread. At most 32: each needs one of the server's 40 threads.",
    )
    api_key_ttl_days: int = Field(
        default=90,
        ge=1,
        description="Default lifetime of a new API key, in days (cut to the minting key's).",
    )
    oidc_issuer: str | None = Field(default=None, description="Accepted JWT `iss`.")
    oidc_audience: str | None = Field(default=None, description="Accepted JWT `aud`.")
    oidc_jwks: str | None = Field(
        default=None, description="JWKS for bearer JWTs: a file path or an http(s) URL."
    )
    oidc_client_id: str | None = Field(
        default=None,
        description="Public OIDC client id `privet login` uses for the device flow "
        "(advertised by GET /v1/auth/config).",
    )
    oidc_console_client_id: str | None = Field(
        default=None,
        description="OIDC client id of the web console's sign-in (authorization code + PKCE, "
        "redirect URI <console>/sign-in/oidc/callback); unset: PRIVET_OIDC_CLIENT_ID.",
    )
    oidc_subject_claim: str = Field(default="sub", description="Claim naming the principal.")
    oidc_roles_claim: str = Field(
        default="privet_roles",
        description="Claim holding role bindings as ['role@project-id', ...].",
    )
    log_level: str = Field(default="INFO", description="Root log level.")
    policy_dir: Path | None = Field(
        default=None, description="Directory of Cedar files; default: the shipped policies/."
    )

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        """The database URL in use; SQLite under home unless PRIVET_DATABASE_URL is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'privet.db'}"

    @property
    def secrets_dir(self) -> Path:
        """Where the local secret files (master key, signing key, pepper) live, mode 0700."""
        return self.home / "secrets"

    @property
    def blobs_dir(self) -> Path:
        """Where encrypted blobs live; only ciphertext is ever written here."""
        return self.home / "blobs"


@settings_getter
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
