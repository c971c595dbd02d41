"""The event validator as it was before its fast paths (kept verbatim as a reference: the
tests check the optimised ``event_errors`` reports exactly what this reports)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from privet_audit.canonical import MAX_SAFE_INTEGER

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


def format_time(when: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, the only time form events use."""
    when = datetime.now(UTC) if when is None else when
    if when.tzinfo is None:
        raise EventError("event times must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
        for i, item in enumerate(value):
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
    for key, item in value.items():
        if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
            errors.append(f"{path}: key {key!r} is not a lower_snake name")
            continue
        _check_value(item, f"{path}.{key}", depth, errors)


def _check_id(value: Any, path: str, errors: list[str], *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        errors.append(f"{path}: {value!r} is not an id (1-128 of A-Za-z0-9._:@/-)")


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
        if not isinstance(t, str) or len(t) > 64 or not _TYPE_RE.fullmatch(t):
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
        objs = event["objects"]
        if not isinstance(objs, dict):
            errors.append("$.objects: must be an object of kind -> id")
        else:
            for kind, oid in objs.items():
                if not isinstance(kind, str) or not _NAME_RE.fullmatch(kind):
                    errors.append(f"$.objects: kind {kind!r} is not a lower_snake name")
                else:
                    _check_id(oid, f"$.objects.{kind}", errors, nullable=False)
    if "digests" in event:
        digs = event["digests"]
        if not isinstance(digs, dict):
            errors.append("$.digests: must be an object of name -> digest")
        else:
            for name, dig in digs.items():
                if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                    errors.append(f"$.digests: name {name!r} is not a lower_snake name")
                elif not isinstance(dig, str) or not _DIGEST_RE.fullmatch(dig):
                    errors.append(
                        f"$.digests.{name}: {dig!r} is not sha256:<64 hex> or hmac-sha256:<64 hex>"
                    )
    if "outcome" in event and event["outcome"] not in OUTCOMES:
        errors.append(f"$.outcome: {event['outcome']!r} is not one of {sorted(OUTCOMES)}")
    if "details" in event:
        det = event["details"]
        if not isinstance(det, dict):
            errors.append("$.details: must be an object")
        else:
            _check_details(det, "$.details", 1, errors)
    return errors
