"""Base classes shared by the domain packages' request schemas."""

from __future__ import annotations

from pydantic import ConfigDict
from sqlmodel import SQLModel


class Strict(SQLModel):
    """A request body that refuses unknown fields: a misspelt field is a 422, not a
    silently ignored declaration."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
