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
