"""Numbers in paths and query strings: ASCII digits only.

``str.isdigit()`` is true for ``²``, ``①`` and the digits of every script, and ``int()``
then fails (a 500) or reads another script's digits as a number nobody typed. Every
number a user sends is parsed here, or by ``ascii_int`` in a pydantic annotation.
"""

from __future__ import annotations

MAX_DIGITS = 18
"""More digits than this cannot be a row number, a version or a page size (< 2**63)."""


def is_ascii_number(text: str) -> bool:
    return 0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()


def ascii_number(text: str) -> int | None:
    """The value of `text` if it is 1 to 18 ASCII digits, else None."""
    return int(text) if is_ascii_number(text) else None


def ascii_int(value: object) -> object:
    """A pydantic before-validator: strings must be plain ASCII digits (no sign, spaces,
    underscores or other scripts' digits); other values pass through to int parsing."""
    if isinstance(value, str) and not is_ascii_number(value):
        raise ValueError(
            f"must be a whole number written with the ASCII digits 0-9 (at most {MAX_DIGITS})"
        )
    return value
