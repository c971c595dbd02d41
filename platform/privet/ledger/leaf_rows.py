"""The rows a leaf is stored and found by: ``ledger_leaves`` (type, project, actor, event
time) and ``ledger_leaf_objects`` (the ids the event names), read from each entry's
JSON. The queries filter on them; the tree commits only to the entry bytes, so a
malformed entry still gets a leaf (type ``invalid``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from privet.ledger.integrate import PendingEntry

__all__ = ["COPIED_COLUMNS", "LeafCopies", "LeafObjects", "leaf_columns", "leaf_copies"]

_json_decode = json.JSONDecoder().decode
_NOT_AN_OBJECT: dict[str, Any] = {}


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            if len(value) == 27 and value[10] == "T" and value[19] == "." and value[-1] == "Z":
                # the canonical form (format_time): fromisoformat is ~30x faster than
                # strptime, and reads the "Z" as UTC itself (no replace)
                return datetime.fromisoformat(value)
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    return fallback


def _decode_event(data: bytes) -> dict[str, Any]:
    """The entry's JSON object, or an empty dict if it is not one (what ``json.loads(data)``
    gives, without its encoding detection for the usual UTF-8 entry; anything else takes
    ``json.loads`` itself). Only read, never modified."""
    try:
        ev = _json_decode(data.decode("utf-8"))
    except ValueError:
        try:
            ev = json.loads(data)
        except ValueError:
            return _NOT_AN_OBJECT
    return ev if isinstance(ev, dict) else _NOT_AN_OBJECT


#: The ``ledger_leaves`` columns copied out of the entry, in ``LeafCopies`` order.
COPIED_COLUMNS = ("type", "project", "actor", "event_time")

#: What a leaf's copied columns hold: type, project, actor, event time.
LeafCopies = tuple[str, str | None, str | None, datetime]


def _text(value: Any, limit: int) -> str | None:
    """A string copied into an index column: cut to the column's width, NUL shown as
    U+FFFD (PostgreSQL refuses NUL in text; one such entry would stop the sequencer)."""
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else None


def _copies(ev: dict[str, Any], fallback: datetime) -> LeafCopies:
    return (
        _text(ev.get("type"), 64) or "invalid",
        _text(ev.get("project"), 128),
        _text(ev.get("actor"), 128),
        _parse_time(ev.get("time"), fallback),
    )


#: A leaf's ``ledger_leaf_objects`` rows: (object id, kind), in the event's order.
LeafObjects = list[tuple[str, str]]


def _objects(ev: dict[str, Any]) -> LeafObjects:
    objects = ev.get("objects")
    out: LeafObjects = []
    if isinstance(objects, dict) and objects:
        seen: set[str] = set()
        for kind, oid in objects.items():
            if isinstance(oid, str) and oid not in seen:
                seen.add(oid)
                out.append((str(_text(oid, 128)), str(_text(str(kind), 64))))
    return out


def leaf_copies(event: bytes, fallback: datetime) -> tuple[LeafCopies, LeafObjects]:
    """The copied columns and object rows an entry's bytes give (``fallback``: the event
    time of an entry without a valid one): what the sequencer writes, and what `privet
    audit verify` checks the stored leaf against."""
    ev = _decode_event(event)
    return _copies(ev, fallback), _objects(ev)


def leaf_columns(
    entries: Sequence[PendingEntry], hashes: Sequence[bytes], start: int, now: datetime
) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The ``ledger_leaves`` and ``ledger_leaf_objects`` rows of ``entries`` (leaves
    ``start``, ``start + 1``, ... with leaf hashes ``hashes``), column by column for
    ``driver_insert_columns``."""
    n = len(entries)
    types: list[str] = []
    projects: list[str | None] = []
    actors: list[str | None] = []
    times: list[datetime] = []
    obj_ids: list[str] = []
    obj_leaves: list[int] = []
    obj_kinds: list[str] = []
    entry_ids: list[int] = []
    for i, (entry_id, event, created_at) in enumerate(entries):
        entry_ids.append(int(entry_id))
        ev = _decode_event(bytes(event))
        t, p, a, when = _copies(ev, created_at or now)
        types.append(t)
        projects.append(p)
        actors.append(a)
        times.append(when)
        for oid, kind in _objects(ev):
            obj_ids.append(oid)
            obj_leaves.append(start + i)
            obj_kinds.append(kind)
    leaves: dict[str, list[Any]] = {
        "idx": list(range(start, start + n)),
        "entry_id": entry_ids,
        "leaf_hash": list(hashes),
        "type": types,
        "project": projects,
        "actor": actors,
        "event_time": times,
        "integrated_at": [now] * n,
    }
    objs: dict[str, list[Any]] = {"object_id": obj_ids, "leaf_idx": obj_leaves, "kind": obj_kinds}
    return leaves, objs
