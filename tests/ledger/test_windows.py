"""Time windows of GET /v1/audit/events are exact whatever the writers' clocks: events
stamped out of order (late commits, replays with ``at=``, a clock years off) are listed
exactly when their time is in [since, until), page by page, while more are appended and
integrated in passes of any size. The reference reads every leaf and parses each entry's
own time; it knows nothing of ``ledger_time_zones``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test
from sqlalchemy import Engine, text

from privet import migrate
from privet.db import session_scope
from privet.ledger import queries
from privet.ledger.emit import EventSpec, encode_events, insert_entries
from privet.ledger.sequencer import Ledger
from tests.ledger.conftest import make_ledger

T0 = datetime(2026, 6, 1, tzinfo=UTC)
#: offsets in minutes from T0: mostly near each other, some far off (a wrong clock)
OFFSETS = st.one_of(
    st.integers(0, 600), st.integers(-(10**6), 10**6), st.sampled_from([-(10**7), 10**7])
)
TIMES = OFFSETS.map(lambda m: T0 + timedelta(minutes=m))


def _append(engine: Engine, times: list[datetime]) -> None:
    specs = [EventSpec(f"win.kind{i % 3}", f"prn_{i % 2}") for i in range(len(times))]
    with session_scope(engine) as session:
        insert_entries(session, encode_events(specs, at=times))


def _reference(engine: Engine) -> list[tuple[int, datetime, str]]:
    """(index, time, type) of every leaf, from the entries' JSON."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT l.idx, e.event FROM ledger_leaves l "
                "JOIN ledger_entries e ON e.id = l.entry_id ORDER BY l.idx"
            )
        ).all()
    out = []
    for idx, event in rows:
        ev = json.loads(bytes(event))
        when = datetime.strptime(ev["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        out.append((int(idx), when, ev["type"]))
    return out


def _check_pages(engine: Engine, query: dict[str, Any], limit: int) -> None:
    since, until, kind = query.get("since"), query.get("until"), query.get("type")
    want = [
        i
        for i, when, t in _reference(engine)
        if (since is None or when >= since)
        and (until is None or when < until)
        and (kind is None or t == kind)
    ]
    got: list[int] = []
    start = 0
    with session_scope(engine) as s:
        while True:
            page = queries.list_events(session=s, **query, start=start, limit=limit)
            got += [e.index for e in page.items]
            if page.next_start is None:
                break
            assert page.next_start > start
            start = page.next_start
        rows = list(queries.iter_event_rows(session=s, **query, limit=limit))
    assert got == want
    assert [r.index for r in rows] == want


class WindowMachine(RuleBasedStateMachine):
    engine: Engine
    home: Path

    @rule(times=st.lists(TIMES, min_size=1, max_size=12))
    def append(self, times: list[datetime]) -> None:
        _append(self.engine, times)

    @rule(batch=st.integers(1, 9))
    def integrate_one_pass(self, batch: int) -> None:
        make_ledger(self.engine, self.home, batch_size=batch).integrate_pass()

    @rule(
        since=st.none() | TIMES,
        until=st.none() | TIMES,
        kind=st.none() | st.sampled_from(["win.kind1"]),
        limit=st.integers(1, 7),
    )
    def page_through(
        self, since: datetime | None, until: datetime | None, kind: str | None, limit: int
    ) -> None:
        query: dict[str, Any] = {"since": since, "until": until}
        if kind is not None:
            query["type"] = kind
        _check_pages(self.engine, query, limit)


def test_windows_are_exact_with_out_of_order_times(
    engine: Engine, home: Path, small_blocks: None
) -> None:
    WindowMachine.engine, WindowMachine.home = engine, home
    run_state_machine_as_test(
        WindowMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


def test_a_block_row_holds_its_leaves_times(engine: Engine, home: Path, small_blocks: None) -> None:
    times = [T0 + timedelta(minutes=m) for m in (5, -3, 900, 1, 2, 3, 4, -(10**6), 7, 8)]
    _append(engine, times)
    make_ledger(engine, home, batch_size=3).integrate_now()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT block FROM ledger_time_zones ORDER BY block")).all()
    assert [r[0] for r in rows] == [0, 1]  # 10 leaves: two complete blocks, a tail of 2
    # a window that only the outliers' blocks and the tail can hold
    _check_pages(engine, {"since": T0 + timedelta(minutes=800)}, 2)
    _check_pages(engine, {"until": T0 - timedelta(minutes=5)}, 1)
    _check_pages(
        engine, {"since": T0 + timedelta(minutes=2), "until": T0 + timedelta(minutes=8)}, 2
    )


def test_migration_writes_the_blocks_the_sequencer_writes(engine: Engine, ledger: Ledger) -> None:
    """Migration 0022 fills the table from existing leaves exactly as the sequencer does:
    2,500 leaves (two complete blocks of 1,024), rows compared after a downgrade to 0021
    and an upgrade back."""
    from alembic import command

    from privet.migrate import _config

    times = [T0 + timedelta(seconds=(i * 7919) % 3000) for i in range(2500)]
    for chunk in range(0, 2500, 500):
        _append(engine, times[chunk : chunk + 500])
        ledger.integrate_now(checkpoint=False)
    read = "SELECT block, time_min, time_max FROM ledger_time_zones ORDER BY block"
    with engine.connect() as conn:
        before = conn.execute(text(read)).all()
    assert [r[0] for r in before] == [0, 1]
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0021_prediction_cases")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text(read)).all() == before
    _check_pages(engine, {"since": T0 + timedelta(seconds=1000)}, 1000)
