"""Hostile-input limits of dataset uploads, read from PRIVET_DATASETS_* environment variables.

Every limit is enforced while the file is read (never after it was read whole), and every
refusal is a 413 problem naming the setting, its value and what to do (docs/DATASETS.md).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from privet.config import settings_getter

PARQUET_EXPANSION_FLOOR = 64 << 20
"""Decoded Parquet text up to this size is never refused for its expansion ratio."""


class DatasetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRIVET_DATASETS_", extra="ignore")

    max_text_chars: int = Field(
        default=100_000,
        ge=16,
        description="Longest text, label or subject id one row may hold (characters); it "
        "also bounds the PII scan of one cell. A longer one refuses the upload (413).",
    )
    max_line_bytes: int = Field(
        default=2 << 20,
        ge=1024,
        description="Longest physical line of a CSV, TSV or JSON Lines file (bytes).",
    )
    max_decoded_bytes: int = Field(
        default=2 << 30,
        ge=1 << 20,
        description="Most text (UTF-8 bytes of texts, labels and subject ids) one file may "
        "decode to, in every format: a Parquet file's compressed pages included.",
    )
    parquet_max_expansion: int = Field(
        default=100,
        ge=2,
        description="A Parquet file may decode to more than 64 MiB of text only up to this "
        "many times its own size (a compression-bomb guard).",
    )


@settings_getter
def get_dataset_settings() -> DatasetSettings:
    """The process's DatasetSettings, read once (``privet.config.settings_getter``)."""
    return DatasetSettings()
