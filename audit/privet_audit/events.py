"""The audit event: what one ledger entry says, and a dependency-free validator.

The published JSON Schema (``event.schema.json`` beside this module) and
``validate_event`` describe the same format; a test keeps them in agreement. The
validator exists so that strict verification needs nothing beyond the standard
library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from privet_audit.canonical import MAX_SAFE_INTEGER, canonical_bytes

__all__ = [
    "EVENT_VERSION",
    "OUTCOMES",
    "EventError",
    "event_schema",
    "format_time",
    "make_event",
    "validate_event",
]

EVENT_VERSION = 1
OUTCOMES = frozenset({"ok", "allow", "deny", "error"})
FIELDS = ("v", "type", "time", "actor", "project", "objects", "digests", "outcome", "details")

_TYPE_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DIGEST_RE = re.compile(r"(sha256|hmac-sha256):[0-9a-f]{64}")
_MAX_DEPTH = 16


class EventError(ValueError):
    """An event does not follow the published event schema."""


def event_schema() -> dict[str, Any]:
    """The published JSON Schema for events, as a dict."""
    import json

    text = resources.files("privet_audit").joinpath("event.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def format_time(when: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, the only time form events use."""
    when = datetime.now(UTC) if when is None else when
    if when.tzinfo is None:
        raise EventError("event times must be timezone-aware")
    when = when.astimezone(UTC)
    if when.year < 1000:  # strftime's %Y does not pad these; keep its exact output
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # the same string as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), without strftime's cost
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _check_value(value: Any, path: str, depth: int, errors: list[str]) -> None:
    if depth > _MAX_DEPTH:
        errors.append(f"{path}: nested deeper than {_MAX_DEPTH}")
        return
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            errors.append(f"{path}: integer out of the safe range")
        return
    if isinstance(value, list):
        inline = depth < _MAX_DEPTH  # deeper items are errors whatever they are
        for i, item in enumerate(value):
            if inline:  # the common scalars inline: no path string, no call
                t = type(item)
                if t is str or item is None or t is bool:
                    continue
                if t is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
            _check_value(item, f"{path}[{i}]", depth + 1, errors)
        return
    if isinstance(value, dict):
        _check_details(value, path, depth + 1, errors)
        return
    errors.append(
        f"{path}: {type(value).__name__} is not allowed (strings, integers, "
        "booleans, null, lists and objects only)"
    )


def _check_details(value: Mapping[Any, Any], path: str, depth: int, errors: list[str]) -> None:
    inline = depth <= _MAX_DEPTH  # deeper items are errors whatever they are
    for key, item in value.items():
        if not _is_name(key):
            errors.append(f"{path}: key {key!r} is not a lower_snake name")
            continue
        if inline:  # the common scalars inline: no path string, no call
            t = type(item)
            if t is str or item is None or t is bool:
                continue
            if t is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
        _check_value(item, f"{path}.{key}", depth, errors)


#: Names, ids and types already seen to match (events repeat the same few keys, types and
#: actors); bounded, cleared when full. Only exact ``str`` values are remembered.
_KNOWN_MAX = 4096


def _remembering(matches: Callable[[str], object]) -> Callable[[Any], bool]:
    """A validity test for strings that remembers (up to ``_KNOWN_MAX``) what passed."""
    known: set[str] = set()

    def test(value: Any) -> bool:
        if type(value) is str and value in known:
            return True
        if not isinstance(value, str) or not matches(value):
            return False
        if type(value) is str:
            if len(known) >= _KNOWN_MAX:
                known.clear()
            known.add(value)
        return True

    return test


_is_name = _remembering(_NAME_RE.fullmatch)
_is_id = _remembering(_ID_RE.fullmatch)
_is_type = _remembering(lambda v: len(v) <= 64 and _TYPE_RE.fullmatch(v))


def _check_id(value: Any, path: str, errors: list[str], *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not _is_id(value):
        errors.append(f"{path}: {value!r} is not an id (1-128 of A-Za-z0-9._:@/-)")


def _check_object(oid: Any, path: str, errors: list[str]) -> None:
    _check_id(oid, path, errors, nullable=False)


def _check_digest(dig: Any, path: str, errors: list[str]) -> None:
    if not isinstance(dig, str) or not _DIGEST_RE.fullmatch(dig):
        errors.append(f"{path}: {dig!r} is not sha256:<64 hex> or hmac-sha256:<64 hex>")


def _check_names(
    value: Any,
    field: str,
    key: str,
    what: str,
    errors: list[str],
    check: Callable[[Any, str, list[str]], None],
) -> None:
    """A map of lower_snake names (``objects``, ``digests``): each name, then its value
    with ``check``."""
    if not isinstance(value, dict):
        errors.append(f"$.{field}: must be an object of {key} -> {what}")
        return
    for name, item in value.items():
        if not _is_name(name):
            errors.append(f"$.{field}: {key} {name!r} is not a lower_snake name")
        else:
            check(item, f"$.{field}.{name}", errors)


def event_errors(event: Any) -> list[str]:
    """Every way ``event`` departs from the schema (empty list: valid)."""
    if not isinstance(event, dict):
        return [f"$: event must be an object, got {type(event).__name__}"]
    errors: list[str] = []
    missing = [f for f in FIELDS if f not in event]
    if missing:
        errors.append(f"$: missing field(s) {', '.join(missing)}")
    extra = sorted(str(k) for k in event if k not in FIELDS)
    if extra:
        errors.append(f"$: unknown field(s) {', '.join(extra)}")
    v = event.get("v", EVENT_VERSION)
    if isinstance(v, bool) or not isinstance(v, int) or v != EVENT_VERSION:
        errors.append(f"$.v: format version must be {EVENT_VERSION}, got {event['v']!r}")
    if "type" in event:
        t = event["type"]
        if not _is_type(t):
            errors.append(f"$.type: {t!r} is not a dotted lower-case type like 'auth.decision'")
    if "time" in event:
        t = event["time"]
        if not isinstance(t, str) or not _TIME_RE.fullmatch(t):
            errors.append(f"$.time: {t!r} is not RFC 3339 UTC with microseconds")
    if "actor" in event:
        _check_id(event["actor"], "$.actor", errors, nullable=True)
    if "project" in event:
        _check_id(event["project"], "$.project", errors, nullable=True)
    if "objects" in event:
        _check_names(event["objects"], "objects", "kind", "id", errors, _check_object)
    if "digests" in event:
        _check_names(event["digests"], "digests", "name", "digest", errors, _check_digest)
    if "outcome" in event and event["outcome"] not in OUTCOMES:
        errors.append(f"$.outcome: {event['outcome']!r} is not one of {sorted(OUTCOMES)}")
    if "details" in event:
        det = event["details"]
        if not isinstance(det, dict):
            errors.append("$.details: must be an object")
        else:
            _check_details(det, "$.details", 1, errors)
    return errors


def validate_event(event: Any) -> None:
    """Raise ``EventError`` naming the first problem if ``event`` breaks the schema."""
    errors = event_errors(event)
    if errors:
        raise EventError("; ".join(errors))


def make_event(
    *,
    type: str,
    outcome: str,
    actor: str | None = None,
    project: str | None = None,
    objects: Mapping[str, str] | None = None,
    digests: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
    time: datetime | str | None = None,
) -> bytes:
    """Build, validate and canonically encode one event: the bytes to append to the log."""
    event = {
        "v": EVENT_VERSION,
        "type": type,
        "time": time if isinstance(time, str) else format_time(time),
        "actor": actor,
        "project": project,
        "objects": dict(objects or {}),
        "digests": dict(digests or {}),
        "outcome": outcome,
        "details": dict(details or {}),
    }
    validate_event(event)
    return canonical_bytes(event)
