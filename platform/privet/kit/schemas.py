"""The one base of request bodies, shared by every domain's ``schemas.py``."""

from __future__ import annotations

from pydantic import ConfigDict
from sqlmodel import SQLModel


class StrictSchema(SQLModel):
    """A request body that refuses unknown fields: a misspelt field is a 422, not a
    silently ignored declaration."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
