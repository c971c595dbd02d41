"""Many writers, many sequencers: 4 processes x 2,000 appends (each in its own transaction,
each process running its own background integrator) end with exactly 8,000 consecutive
leaf indexes and a consistent tree."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from privet.db import session_scope
from privet.ledger.sequencer import Ledger
from privet.ledger.verify import verify_ledger
from tests.ledger._workers import append_worker, run_writers

PROCS = 4
PER_PROC = 2000


@pytest.mark.slow
def test_four_processes_append_8000(engine: Engine, ledger: Ledger, db_url: str) -> None:
    elapsed, reports, exitcodes = run_writers(
        append_worker, db_url, PROCS, PER_PROC, settle=0.5, timeout=120, join=30
    )
    assert exitcodes == [0] * PROCS
    errors = [e for r in reports for e in r["errors"]]
    assert not errors, errors[:5]
    written = [i for r in reports for i in r["ids"]]
    assert len(written) == len(set(written)) == PROCS * PER_PROC

    head = ledger.integrate_now()
    assert head.size == PROCS * PER_PROC
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT idx, entry_id FROM ledger_leaves ORDER BY idx")).all()
    assert [int(r[0]) for r in rows] == list(range(PROCS * PER_PROC))
    assert sorted(int(r[1]) for r in rows) == sorted(written)
    with session_scope(engine) as s:
        report = verify_ledger(session=s, trusted_checkpoint=head.checkpoint_note)
    assert report.ok, report.message
    assert report.checkpoints_verified >= 2
    print(f"\n{PROCS}x{PER_PROC} appends in {elapsed:.1f}s ({len(written) / elapsed:.0f}/s)")
