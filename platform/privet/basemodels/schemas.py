"""Request and response schemas of the base-model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlmodel import SQLModel

from privet.kit.schemas import StrictSchema


class BaseModelCreate(StrictSchema):
    """Register a local Hugging Face folder (under PRIVET_BASE_MODELS_ROOTS)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$", description="Unique name.")
    path: str = Field(max_length=4096, description="Absolute path of the folder.")
    license: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="SPDX licence id or expression (e.g. Apache-2.0, MIT OR Apache-2.0), "
        "checked against the SPDX License List (422 `spdx-licence` if unknown). Without it "
        "or licence_text: the model card's id, else a LICENSE file's text.",
    )
    licence_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=100_000,
        description="The licence's own words, for a licence with no SPDX id: kept and shown "
        "as free text. Not with license.",
    )
    pooling: str | None = Field(
        default=None, description="cls or mean; else from a sentence-transformers config."
    )
    description: str = Field(default="", max_length=500)


class BaseModelPublic(SQLModel):
    id: str
    name: str
    state: str
    path: str
    digests: dict[str, str]
    sizes: dict[str, int]
    model_type: str
    architecture: str
    vocab_size: int
    vocab_coverage: dict[str, Any]
    max_positions: int
    pooling: str
    pooling_source: str
    license: str | None
    """The SPDX expression (None when the licence is free text)."""
    licence_text: str | None
    """The licence's own words when it has no SPDX id (None otherwise)."""
    description: str
    registered_by: str
    registered_at: datetime
    retired_by: str | None
    retired_at: datetime | None
