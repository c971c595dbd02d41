"""Canonical JSON for ledger entries.

An entry's bytes are what the Merkle tree commits to, so the same event must always
encode to the same bytes, on any machine and in any language. The rules are the
subset of RFC 8785 (JCS) that needs no floating point:

* values are objects, arrays, strings, integers in [-(2**53 - 1), 2**53 - 1],
  ``true``, ``false`` and ``null``; floats (and NaN/Infinity) are rejected;
* object keys are strings, unique, sorted by their UTF-16 code units (as JCS);
* no whitespace outside strings; ``,`` and ``:`` as separators;
* strings are written as-is in UTF-8 except ``"`` ``\\`` and the control
  characters U+0000..U+001F, which are escaped (``\\b \\f \\n \\r \\t`` or
  ``\\u00xx`` in lower-case hex); lone surrogates are rejected.

Because every control character is escaped, canonical bytes never contain a newline,
which is what lets a bundle store one entry per line verbatim.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_SAFE_INTEGER", "CanonicalError", "canonical_bytes", "parse_canonical"]

#: Largest integer that every JSON implementation (IEEE doubles) reads back exactly.
MAX_SAFE_INTEGER = 2**53 - 1

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class CanonicalError(ValueError):
    """A value cannot be encoded canonically, or bytes are not in canonical form."""


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _normalize(obj: Any, path: str) -> Any:
    """Return a copy whose dicts are in canonical key order; reject what JCS-lite forbids."""
    if obj is None or obj is True or obj is False:
        return obj
    if isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        if not -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
            raise CanonicalError(f"{path}: integer {obj} is outside +/-(2**53 - 1)")
        return int(obj)
    if isinstance(obj, float):
        raise CanonicalError(
            f"{path}: floats are not allowed in canonical JSON (got {obj!r}); "
            "use an integer (e.g. scaled) or a decimal string"
        )
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise CanonicalError(f"{path}: object key {key!r} is not a string")
        keys = sorted(obj, key=_utf16_key)
        return {k: _normalize(obj[k], f"{path}.{k}") for k in keys}
    if isinstance(obj, list | tuple):
        return [_normalize(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    raise CanonicalError(f"{path}: type {type(obj).__name__} is not allowed in canonical JSON")


def canonical_bytes(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON (UTF-8 bytes, no trailing newline)."""
    text = _ENCODER.encode(_normalize(obj, "$"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError(f"string contains a lone surrogate: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CanonicalError(f"duplicate object key {key!r}")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise CanonicalError(f"floats are not allowed in canonical JSON (got {text})")


def _no_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not allowed in canonical JSON")


def parse_canonical(data: bytes) -> Any:
    """Parse ``data`` and check that it is exactly the canonical encoding of its value.

    Used by strict verification: a ledger entry that parses but is not canonical was
    not produced by this format's writer.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalError(f"not valid UTF-8: {exc}") from exc
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise CanonicalError(f"not valid JSON: {exc}") from exc
    again = canonical_bytes(value)
    if again != data:
        raise CanonicalError("JSON is valid but not in canonical form")
    return value
