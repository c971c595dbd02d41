"""emit / emit_many: one event per call in the caller's transaction, schema enforced."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func, select, text

from privet.db import session_scope
from privet.ledger import EventSpec, LedgerEventError, emit, emit_many
from privet.ledger.tables import LedgerEntry

DIGEST = "sha256:" + "ab" * 32


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


def test_emit_returns_increasing_ids_and_stores_canonical_event(engine: Engine) -> None:
    with session_scope(engine) as s:
        a = emit(
            s,
            type="project.created",
            actor="prn_1",
            project="prj_1",
            objects={"project": "prj_1"},
            digests={"spec": DIGEST},
            details={"name_len": 7, "flags": [True, None, "x"]},
        )
        b = emit(s, type="auth.decision", actor=None, outcome="deny")
    assert b > a
    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT event FROM ledger_entries WHERE id = :i"), {"i": a}
        ).scalar()
    event = json.loads(bytes(raw))
    assert event["type"] == "project.created" and event["objects"] == {"project": "prj_1"}
    assert event["v"] == 1 and event["time"].endswith("Z")
    # canonical: sorted keys, no spaces
    assert bytes(raw) == json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


def test_emit_many_keeps_order(engine: Engine) -> None:
    specs = [EventSpec("model.predicted", "prn_app", details={"n": i}) for i in range(50)]
    with session_scope(engine) as s:
        ids = emit_many(s, specs)
    assert ids == sorted(ids) and len(set(ids)) == 50
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event FROM ledger_entries ORDER BY id")).all()
    assert [json.loads(bytes(r[1]))["details"]["n"] for r in rows] == list(range(50))
    assert emit_many(engine and s, []) == []  # empty batch is a no-op


def test_event_rolls_back_with_the_change(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        emit(s, type="dataset.registered", actor="prn_1")
        raise RuntimeError("state change failed")
    assert _count(engine) == 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"details": {"epsilon": 8.0}}, "float"),
        ({"type": "NoDots"}, "type"),
        ({"actor": "has space"}, "actor"),
        ({"outcome": "maybe"}, "outcome"),
        ({"digests": {"input": "md5:abc"}}, "digests"),
        # many short strings: one long string is refused earlier, as prose
        ({"details": {"blob": ["x" * 100] * 90}}, "limit"),
        ({"details": {"blob": "x" * 9000}}, "prose"),
    ],
)
def test_emit_refuses_bad_events(engine: Engine, kwargs: dict, needle: str) -> None:
    args = {"type": "auth.decision", "actor": "prn_1", **kwargs}
    with pytest.raises(LedgerEventError, match=needle), session_scope(engine) as s:
        emit(s, **args)
    assert _count(engine) == 0


def test_encode_events_stamps_each_event_with_its_given_time() -> None:
    from datetime import UTC, datetime

    from privet.ledger.emit import encode_events

    specs = [EventSpec("auth.decision", "usr_a", outcome="allow"), EventSpec("x.y", None)]
    times = [datetime(2026, 3, 1, 9, 30, tzinfo=UTC), datetime(2026, 3, 1, 9, 31, 5, 7, UTC)]
    rows = encode_events(specs, at=times)
    assert [json.loads(r["event"])["time"] for r in rows] == [
        "2026-03-01T09:30:00.000000Z",
        "2026-03-01T09:31:05.000007Z",
    ]
    assert [r["created_at"] for r in rows] == times
    with pytest.raises(LedgerEventError, match="one time per event"):
        encode_events(specs, at=times[:1])
    with pytest.raises(LedgerEventError, match="timezone-aware"):
        encode_events(specs[:1], at=[datetime(2026, 3, 1)])  # naive: refused
