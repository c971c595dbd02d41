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

Two encoders give these bytes. The reference (``_normalize`` then ``json``'s encoder)
copies the value with its objects' keys in UTF-16 order, checking every rule on the way.
The fast path, taken for values made only of the exact types ``dict`` (``str`` keys),
``list``, ``str``, ``int`` (in range), ``bool`` and ``None`` whose keys sort the same by
code point as by UTF-16 code units (no key character at or above U+D800), checks that in
one walk and lets the C encoder sort the keys (``sort_keys``). Both call the same C string
encoder, so they differ only in who sorts the keys, which for such keys is the same order;
anything else (floats, big integers, tuples, subclasses, other keys) takes the reference.
A test compares the two over many generated values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

__all__ = ["MAX_SAFE_INTEGER", "CanonicalError", "canonical_bytes", "parse_canonical"]

#: Largest integer that every JSON implementation (IEEE doubles) reads back exactly.
MAX_SAFE_INTEGER = 2**53 - 1

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _sorted_encoder() -> Callable[[Any], str]:
    """The same encoder sorting keys by code point (the fast path, see the module
    docstring): json's C encoder made once (``JSONEncoder.encode`` makes one per call),
    with no circular-reference markers (``_plain`` bounds the depth)."""
    if c_make_encoder is None:  # no C accelerator: the same encoder in Python
        return json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
        ).encode

    def _refuse(obj: Any) -> Any:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    make: Any = c_make_encoder
    chunks = make(None, _refuse, encode_basestring, None, ":", ",", True, False, False)
    return lambda obj: "".join(chunks(obj, 0))


_SORTED_ENCODE = _sorted_encoder()
#: Deeper values take the reference path (which also bounds a self-referencing value).
_FAST_DEPTH = 64


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


def _plain_values(values: Iterable[Any], depth: int) -> bool:
    """The values of a dict or list at ``depth`` (scalars inline, containers recursively)."""
    if depth > _FAST_DEPTH:
        return False
    for value in values:
        tv = type(value)
        if tv is str or value is None or tv is bool:
            continue
        if tv is int:
            if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                continue
            return False
        if not _plain(value, depth + 1):
            return False
    return True


def _plain(obj: Any, depth: int) -> bool:
    """True if ``obj`` can take the fast path: exact dict/list/str/int/bool/None, integers
    in range, and keys whose code-point order is their UTF-16 order (no character at or
    above U+D800, which also keeps lone surrogates on the reference path)."""
    t = type(obj)
    if t is dict:
        for key in obj:
            if type(key) is not str or (not key.isascii() and max(key) >= "\ud800"):
                return False
        return _plain_values(obj.values(), depth)
    if t is list:
        return _plain_values(obj, depth)
    if t is str or obj is None or t is bool:
        return True
    if t is int:
        return bool(-MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER)
    return False


def canonical_bytes(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON (UTF-8 bytes, no trailing newline)."""
    if _plain(obj, 0):
        text = _SORTED_ENCODE(obj)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate in a string: the reference path says where
    return _canonical_bytes_reference(obj)


def _canonical_bytes_reference(obj: Any) -> bytes:
    """The reference encoder: every rule checked on a normalized copy (module docstring)."""
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
