"""Key-provider settings, read from PRIVET_* environment variables.

Kept inside crypto until the platform Settings fold them in; the names are final.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class CryptoSettings(BaseSettings):
    """Which master-key provider to use and how to reach it."""

    model_config = SettingsConfigDict(env_prefix="PRIVET_", extra="ignore")

    key_provider: Literal["local", "pkcs11"] = Field(
        default="local",
        description="`local`: key files under $PRIVET_HOME/secrets; `pkcs11`: an HSM.",
    )
    pkcs11_module: str | None = Field(
        default=None, description="Path of the PKCS#11 module (.so), e.g. libsofthsm2.so."
    )
    pkcs11_token: str | None = Field(default=None, description="Label of the PKCS#11 token.")
    pkcs11_pin: SecretStr | None = Field(default=None, description="User PIN of the token.")
    pkcs11_key_label: str = Field(
        default="privet-kek",
        min_length=1,
        max_length=64,
        description="Label prefix of the master key objects in the token (`<label>.v<n>`).",
    )


@settings_getter
def get_crypto_settings() -> CryptoSettings:
    """The process's CryptoSettings, read once (``privet.config.settings_getter``)."""
    return CryptoSettings()
