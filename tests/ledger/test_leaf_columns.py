"""The sequencer's leaf rows, built column by column, are the rows it built one dict at a
time before (kept below as the reference), for well-formed and malformed entries alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from privet.ledger.emit import EventSpec, encode_events
from privet.ledger.integrate import leaf_hashes
from privet.ledger.leaf_rows import leaf_columns
from privet_audit.merkle import leaf_hash

NOW = datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC)
CREATED = datetime(2026, 11, 29, 23, 0, 0, 1, tzinfo=UTC)


def _reference_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    return fallback


def _short(value: Any, n: int) -> str | None:
    return value[:n].replace("\0", "\N{REPLACEMENT CHARACTER}") if isinstance(value, str) else None


def _reference_rows(
    rows: list[tuple[int, bytes, datetime | None]], start: int, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[bytes]]:
    leaf_rows: list[dict[str, Any]] = []
    obj_rows: list[dict[str, Any]] = []
    hashes: list[bytes] = []
    for i, (entry_id, event, created_at) in enumerate(rows):
        data = bytes(event)
        h = leaf_hash(data)
        hashes.append(h)
        try:
            ev = json.loads(data)
            if not isinstance(ev, dict):
                ev = {}
        except ValueError:
            ev = {}
        idx = start + i
        leaf_rows.append(
            {
                "idx": idx,
                "entry_id": int(entry_id),
                "leaf_hash": h,
                "type": _short(ev.get("type"), 64) or "invalid",
                "project": _short(ev.get("project"), 128),
                "actor": _short(ev.get("actor"), 128),
                "event_time": _reference_time(ev.get("time"), created_at or now),
                "integrated_at": now,
            }
        )
        objects = ev.get("objects")
        if isinstance(objects, dict):
            seen: set[str] = set()
            for kind, oid in objects.items():
                if isinstance(oid, str) and oid not in seen:
                    seen.add(oid)
                    obj_rows.append(
                        {
                            "object_id": _short(oid, 128),
                            "leaf_idx": idx,
                            "kind": _short(str(kind), 64),
                        }
                    )
    return leaf_rows, obj_rows, hashes


def _columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in names}


ODD_ENTRIES: list[bytes] = [
    b"",
    b"not json",
    b"[1, 2]",
    b'"a string"',
    b"\xff\xfe",
    b'\xef\xbb\xbf{"type": "bom.utf8", "actor": "a"}',
    '{"type": "utf16.le"}'.encode("utf-16-le"),
    '{"type": "utf16.bom"}'.encode("utf-16"),
    b'{"type": 3, "project": ["x"], "actor": null, "objects": []}',
    b'{"type": "' + b"t" * 100 + b'", "project": "' + b"p" * 200 + b'"}',
    b'{"objects": {"a": "x", "b": "x", "c": 3, "d": "' + b"o" * 200 + b'"}}',
    b'{"time": "2026-11-30T01:13:02.123456Z"}',
    b'{"time": "2026-11-30T01:13:02,123456Z"}',
    b'{"time": "2026-11-30T01:13:02.1234567"}',
    b'{"time": "2026-11-30 01:13:02.123456Z"}',
    b'{"time": "2026-11-30T01:13:02.12345Z"}',
    b'{"time": "2026-11-30T01:13:02+00:00:00Z"}',
    b'{"time": "2026-13-30T01:13:02.123456Z"}',
    b'{"time": 5}',
    b'{"type": "dup.a", "type": "dup.b"}',
    b'{"type": "ctl\\u0000x"}',
    b'{"type": "t", "project": "p\\u0000", "objects": {"k\\u0000": "o\\u0000"}}',
]


@pytest.mark.parametrize("created", [CREATED, None])
def test_leaf_columns_match_the_reference_rows(created: datetime | None) -> None:
    specs = [
        EventSpec(
            "auth.decision",
            f"prn_{i}",
            "prj_1" if i % 2 else None,
            {"model": f"m{i}", "dataset": f"m{i}", "job": "j"} if i % 3 else None,
            None,
            "allow",
            {"i": i, "s": "é\U0001f600"},
        )
        for i in range(20)
    ]
    entries = [row["event"] for row in encode_events(specs)] + ODD_ENTRIES
    rows = [(100 + i, data, created) for i, data in enumerate(entries)]
    hashes = leaf_hashes(rows)
    leaves, objects = leaf_columns(rows, hashes, 7, NOW)
    ref_leaves, ref_objects, ref_hashes = _reference_rows(rows, 7, NOW)
    assert hashes == ref_hashes
    assert leaves == _columns(ref_leaves, list(leaves))
    assert list(leaves) == list(ref_leaves[0])
    assert objects == _columns(ref_objects, ["object_id", "leaf_idx", "kind"])
    for got, want in zip(leaves["event_time"], (r["event_time"] for r in ref_leaves), strict=True):
        assert got.tzinfo is not None and got.utcoffset() == want.utcoffset()
