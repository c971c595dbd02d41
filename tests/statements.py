"""Counting the SQL statements a block runs: how tests check that work is batched (a
fixed number of round trips, not one per row)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def counted(eng: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``eng`` inside the block."""
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(eng, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(eng, "before_cursor_execute", before)
