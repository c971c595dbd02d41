"""Keyset paging, the one way every list that grows with traffic is paged.

A page is read with ``WHERE key after <the last row's key> ORDER BY key LIMIT n + 1``,
never ``OFFSET``: the database walks an index from the cursor, so page 10,000 costs what
page 1 costs, and a row inserted while a client pages is neither skipped nor repeated
(rows are ordered by a key that never changes). The cursor is opaque to clients: the
``next`` value of the previous page, checked here before it reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import Mapped

from privet.kit.errors import InvalidInputError

__all__ = [
    "MAX_CURSOR",
    "MAX_PAGE",
    "Keyset",
    "Page",
    "check_limit",
]

MAX_PAGE = 1000
"""The largest page any list returns."""

MAX_CURSOR = 400
"""A cursor holds a timestamp and an id or two; anything longer was not issued here."""

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])
KeyValue = datetime | str | int
KeyColumn = ColumnElement[Any] | Mapped[Any]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its rows and the cursor of the next page (None: the last)."""

    items: list[T]
    next: str | None


def check_limit(limit: int) -> int:
    """The page size, or InvalidInputError naming the bound."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"limit must be between 1 and {MAX_PAGE}", rule="page-size", maximum=MAX_PAGE
        )
    return limit


def _bad_cursor(why: str) -> InvalidInputError:
    return InvalidInputError(
        f"after must be the `next` cursor of an earlier page of this list ({why})",
        rule="cursor",
    )


@dataclass(frozen=True)
class Keyset:
    """The order of a list: its key columns, all ascending or all descending, the last
    one unique, so that the key names one row and the order is total.

    The page statement has a leading bound on the first column (``a <= t``) that any
    planner turns into an index range, and the exact tie-break (``a < t OR ...``) as a
    filter over the few rows that share ``t``.
    """

    columns: tuple[KeyColumn, ...]
    kinds: tuple[type, ...]
    descending: bool = False

    def order_by(self) -> list[ColumnElement[Any]]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def seek(self, values: Sequence[KeyValue]) -> ColumnElement[bool]:
        """Rows strictly after ``values`` in this order."""

        def beyond(col: KeyColumn, value: KeyValue) -> ColumnElement[bool]:
            return col < value if self.descending else col > value

        exact: ColumnElement[bool] = beyond(self.columns[-1], values[-1])
        for col, value in zip(self.columns[-2::-1], values[-2::-1], strict=True):
            exact = or_(beyond(col, value), and_(col == value, exact))
        first, bound = self.columns[0], values[0]
        lead = first <= bound if self.descending else first >= bound
        return and_(lead, exact)

    def page(self, stmt: S, *, after: str | None, limit: int) -> S:
        """``stmt`` ordered by the key, from ``after``, one row more than ``limit`` (the
        extra row says whether there is a next page)."""
        check_limit(limit)
        if after is not None:
            stmt = stmt.where(self.seek(self.decode(after)))
        return stmt.order_by(*self.order_by()).limit(limit + 1)

    def split(
        self, rows: Sequence[T], *, limit: int, key: Callable[[T], Sequence[KeyValue]]
    ) -> Page[T]:
        """The page of ``rows`` read with ``page`` (at most ``limit`` + 1 of them)."""
        if len(rows) <= limit:
            return Page(list(rows), None)
        items = list(rows[:limit])
        return Page(items, self.encode(key(items[-1])))

    def encode(self, values: Sequence[KeyValue]) -> str:
        plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
        raw = json.dumps(plain, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> list[KeyValue]:
        """The key a cursor holds; InvalidInputError for anything this list did not issue."""
        if not cursor or len(cursor) > MAX_CURSOR or not cursor.isascii():
            raise _bad_cursor(f"1 to {MAX_CURSOR} ASCII characters")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            plain = json.loads(raw)
        except (binascii.Error, ValueError):
            raise _bad_cursor("not a cursor") from None
        if not isinstance(plain, list) or len(plain) != len(self.kinds):
            raise _bad_cursor("not a cursor of this list")
        return [_value(kind, v) for kind, v in zip(self.kinds, plain, strict=True)]


def _value(kind: type, value: object) -> KeyValue:
    if kind is datetime and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _bad_cursor("not a cursor of this list") from None
        if parsed.tzinfo is None:
            raise _bad_cursor("not a cursor of this list")
        return parsed
    if kind is str and isinstance(value, str) and len(value) <= 200:
        return value
    if kind is int and type(value) is int and 0 <= value < 2**63:
        return value
    raise _bad_cursor("not a cursor of this list")
