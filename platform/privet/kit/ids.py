"""Identifiers and timestamps with one format everywhere."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    """A random, URL-safe, prefixed id (e.g. `prj_3kT...`); the prefix says what it names."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, microsecond precision."""
    return datetime.now(UTC)
