"""Long writer transactions against two sequencers: no committed event is ever skipped.

The inference load test (64 clients, two server processes on one PostgreSQL database,
each request's transaction open for a model forward pass while it emits one
``auth.decision`` and then a batch of ``prediction.made`` events) twice ended with
"entry id N was accepted but its leaf is gone": an entry at or below the sequencer's floor
that had no leaf. This is the same shape, fast: writer threads keep transactions open for
random times while they emit 1 + k events (some roll back), two sequencers with their own
engines (as two processes have) integrate with the try-lock and the waiting lock at once,
then ``integrate_now`` and the verifier must account for every committed event exactly
once, with dense indexes.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from privet.config import Settings
from privet.db import create_db_engine, is_sqlite, session_scope
from privet.ledger import emit
from privet.ledger.emit import EventSpec, emit_many
from privet.ledger.sequencer import Ledger
from privet.ledger.settings import LedgerSettings
from privet.ledger.verify import verify_ledger


class _Rollback(Exception):
    pass


def test_long_transactions_with_two_sequencers_lose_nothing(
    engine: Engine, ledger: Ledger, db_url: str, home: Path
) -> None:
    sqlite = is_sqlite(engine)
    seconds = 4.0 if sqlite else 8.0
    writers = 4 if sqlite else 16
    # SQLite writers hold the database write lock for their whole transaction: keep them short
    max_sleep = 0.005 if sqlite else 0.08
    stop = threading.Event()
    committed: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        rnd = random.Random(w)
        while not stop.is_set():
            try:
                with session_scope(engine) as s:
                    ids = [emit(s, type="auth.decision", actor=f"prn_w{w}", outcome="allow")]
                    time.sleep(rnd.random() * max_sleep)  # the model's forward pass
                    k = rnd.randint(1, 8)
                    specs = [EventSpec("prediction.made", f"prn_w{w}") for _ in range(k)]
                    ids += emit_many(s, specs)
                    time.sleep(rnd.random() * max_sleep / 4)
                    if rnd.random() < 0.1:
                        raise _Rollback
                with lock:
                    committed.extend(ids)
            except _Rollback:
                pass
            except Exception as exc:  # reported below
                errors.append(repr(exc))

    def sequencer(i: int) -> None:
        # its own engine and Ledger: what a second server process has
        eng = create_db_engine(db_url)
        led = Ledger(
            eng,
            Settings(home=home),
            LedgerSettings(batch_size=50 if i else 2000, checkpoint_every=200),
        )
        rnd = random.Random(1000 + i)
        try:
            while not stop.is_set():
                led.integrate_pass(wait=bool(i) and rnd.random() < 0.5)
                time.sleep(rnd.random() * 0.01)
        except Exception as exc:  # reported below
            errors.append(f"sequencer {i}: {exc!r}")
        finally:
            eng.dispose()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=sequencer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert len(committed) > 50

    head = ledger.integrate_now()
    with engine.connect() as conn:
        leaves = conn.execute(text("SELECT idx, entry_id FROM ledger_leaves ORDER BY idx")).all()
        stored = {int(r[0]) for r in conn.execute(text("SELECT id FROM ledger_entries"))}
    assert [int(r[0]) for r in leaves] == list(range(len(leaves)))  # dense, no fork
    entry_ids = [int(r[1]) for r in leaves]
    assert len(entry_ids) == len(set(entry_ids))  # no duplicate
    assert stored == set(committed)  # rolled-back events never became entries
    missing = sorted(set(committed) - set(entry_ids))
    assert not missing, f"{len(missing)} committed entries never integrated: {missing[:10]}"
    assert head.size == len(committed)
    with session_scope(engine) as s:
        report = verify_ledger(session=s, trusted_checkpoint=head.checkpoint_note)
    assert report.ok, report.message
