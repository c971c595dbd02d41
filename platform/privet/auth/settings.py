"""Browser-session settings of the web console, read from PRIVET_CONSOLE_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter


class ConsoleSessionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_CONSOLE_", extra="ignore")

    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A console session ends after this many minutes without a request.",
    )
    session_absolute_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="A console session ends this many hours after sign-in, however active.",
    )


@settings_getter
def get_console_session_settings() -> ConsoleSessionSettings:
    return ConsoleSessionSettings()
