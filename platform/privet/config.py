"""One Settings object for the whole platform, read from PRIVET_* environment variables.

Every default is the embedded mode: SQLite and key files under PRIVET_HOME, a local worker.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
