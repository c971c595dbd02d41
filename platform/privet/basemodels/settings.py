"""Base-model registry settings, read from PRIVET_BASE_MODELS_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from privet.config import settings_getter


class BaseModelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_BASE_MODELS_", extra="ignore")

    roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders (separated by ':') under which a platform admin may register "
        "a base model; any other path is refused. Empty: no folder may be registered.",
    )
    max_file_bytes: int = Field(
        default=4 << 30,
        gt=0,
        description="Largest file a base-model folder may hold (bytes); a bigger one is "
        "refused with 413 before anything is hashed.",
    )

    @field_validator("roots", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(p) for p in value.split(":") if p.strip()]
        return value


@settings_getter
def get_base_model_settings() -> BaseModelSettings:
    """The process's BaseModelSettings, read once (``privet.config.settings_getter``)."""
    return BaseModelSettings()
