"""The sequencer: dense leaf indexes, late commits and rollbacks, checkpoints, sinks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from privet.db import is_sqlite, session_scope
from privet.ledger import emit
from privet.ledger.sequencer import Ledger, LedgerIntegrityError, LedgerSequencer
from privet.ledger.sinks import read_checkpoint_log
from privet_audit.checkpoint import open_checkpoint
from privet_audit.merkle import root_hash

from .conftest import make_ledger, owner_bypass


def _emit(engine: Engine, n: int = 1, type: str = "test.event") -> list[int]:
    ids = []
    for i in range(n):
        with session_scope(engine) as s:
            ids.append(emit(s, type=type, actor="prn_t", details={"i": i}))
    return ids


def _leaves(engine: Engine) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [
            (int(a), int(b))
            for a, b in conn.execute(text("SELECT idx, entry_id FROM ledger_leaves ORDER BY idx"))
        ]


def _leaf_hashes(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return [
            bytes(r[0])
            for r in conn.execute(text("SELECT leaf_hash FROM ledger_leaves ORDER BY idx"))
        ]


def test_integrates_in_order_with_dense_indexes(engine: Engine, ledger: Ledger) -> None:
    ids = _emit(engine, 120)
    head = ledger.integrate_now()
    assert head.size == 120
    assert _leaves(engine) == list(enumerate(ids))
    assert head.root == root_hash(_leaf_hashes(engine))
    # checkpoints every 50 events, plus the forced one at the end
    with engine.connect() as conn:
        sizes = [int(r[0]) for r in conn.execute(text("SELECT tree_size FROM ledger_checkpoints"))]
    assert sizes[-1] == 120 and sizes == sorted(sizes)
    cp = open_checkpoint(head.checkpoint_note or "", ledger.verifier)
    assert cp.size == 120 and cp.root == head.root
    # idempotent: nothing new, no new checkpoint
    assert ledger.integrate_now().checkpoint_size == 120


def test_small_batches_build_the_same_tree(engine: Engine, home: Path) -> None:
    ledger = make_ledger(engine, home, batch_size=7, checkpoint_every=10)
    _emit(engine, 61)
    head = ledger.integrate_now()
    assert head.size == 61 and head.root == root_hash(_leaf_hashes(engine))


def test_late_commit_and_rollback_never_gap_or_duplicate(engine: Engine, ledger: Ledger) -> None:
    """An entry id drawn early but committed late is integrated later, at the next index;
    an id that rolls back leaves no hole in the leaf indexes."""
    sqlite = is_sqlite(engine)
    early = Session(engine)
    if not sqlite:  # on SQLite a writer holds the write lock: nobody else could commit
        early_id = emit(early, type="test.late", actor="prn_t")
    _emit(engine, 3)
    rolled = Session(engine)
    emit(rolled, type="test.rolled", actor="prn_t")
    rolled.rollback()
    rolled.close()
    ledger.integrate_now()
    assert [i for i, _ in _leaves(engine)] == [0, 1, 2]
    if not sqlite:
        # while the early writer is open, the floor (a transaction id on PostgreSQL) must
        # stay at or below its transaction's xid
        early_xid = int(
            early.execute(text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
        )
        for _ in range(3):
            ledger.integrate_pass()
        assert _floor_xid(engine) <= early_xid
        early.commit()
    early.close()
    _emit(engine, 2)
    # several passes, as the background integrator would run them
    for _ in range(3):
        ledger.integrate_pass()
    ledger.integrate_now()
    leaves = _leaves(engine)
    assert [i for i, _ in leaves] == list(range(len(leaves)))
    entry_ids = [e for _, e in leaves]
    assert len(set(entry_ids)) == len(entry_ids)
    if not sqlite:
        assert early_id in entry_ids and leaves[3][1] == early_id
        assert len(leaves) == 6
        # the floor moves past every entry's transaction once it has ended (the xmin is
        # cluster-wide, so other databases' work may delay it: it only delays the floor,
        # never integration)
        with engine.connect() as conn:
            top = int(
                conn.execute(text("SELECT max(xid)::text::bigint FROM ledger_entries")).scalar_one()
            )
        deadline = time.monotonic() + 30
        while True:
            ledger.integrate_pass()
            floor = _floor_xid(engine)
            if floor > top or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert floor > top
    else:
        assert len(leaves) == 5


def _floor_xid(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT floor_xid FROM ledger_tree_states ORDER BY id DESC LIMIT 1")
        ).scalar()
    return int(value or 0)


def test_background_integrator_kick_and_time_checkpoints(engine: Engine, home: Path) -> None:
    ledger = make_ledger(
        engine, home, checkpoint_every=10_000, checkpoint_interval_s=0.5, poll_interval_s=0.2
    )
    seq = LedgerSequencer(ledger)
    seq.start()
    try:
        _emit(engine, 5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            head = ledger.head()
            if head.size == 5 and head.checkpoint_size == 5:
                break
            time.sleep(0.05)
        assert head.size == 5 and head.checkpoint_size == 5
    finally:
        seq.stop()
    assert seq.errors == 0
    notes = read_checkpoint_log(home / "checkpoints.log")
    assert notes and open_checkpoint(notes[-1], ledger.verifier).size == 5


def test_checkpoint_log_sink_gets_every_checkpoint_in_order(engine: Engine, ledger: Ledger) -> None:
    for _ in range(3):
        _emit(engine, 20)
        ledger.integrate_now()
    notes = read_checkpoint_log(ledger.checkpoint_log_path)
    sizes = [open_checkpoint(n, ledger.verifier).size for n in notes]
    assert sizes == sorted(set(sizes)) and sizes[-1] == 60
    with engine.connect() as conn:
        db_notes = [
            r[0] for r in conn.execute(text("SELECT note FROM ledger_checkpoints ORDER BY id"))
        ]
    assert notes == db_notes


def test_signing_key_is_a_0600_file_outside_the_database(ledger: Ledger, home: Path) -> None:
    _ = ledger.signer
    path = home / "secrets" / "ledger-signing-key.pem"
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600


def test_never_signs_a_checkpoint_inconsistent_with_the_previous(
    engine: Engine, ledger: Ledger
) -> None:
    _emit(engine, 8)
    ledger.integrate_now()
    # the owner rewrites the stored tree (node and tree state agree with each other), so
    # the tree no longer extends the signed checkpoint of size 8
    forged = b"\x11" * 32
    with owner_bypass(engine) as conn:
        conn.execute(
            text("UPDATE ledger_nodes SET hash = :h WHERE level = 3 AND idx = 0"), {"h": forged}
        )
        conn.execute(
            text(
                "INSERT INTO ledger_tree_states (tree_size, root_hash, floor_entry_id, "
                "created_at) SELECT tree_size, :h, floor_entry_id, created_at "
                "FROM ledger_tree_states ORDER BY id DESC LIMIT 1"
            ),
            {"h": forged},
        )
    _emit(engine, 3)
    fresh = make_ledger(engine, ledger.settings.home)  # no cached tree: reads the stored one
    with pytest.raises(LedgerIntegrityError, match="refusing to sign"):
        fresh.integrate_now()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT max(tree_size) FROM ledger_checkpoints")).scalar() == 8


def test_concurrent_sequencers_in_threads(engine: Engine, ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(40):
                _emit(engine, 1)
                ledger.integrate_pass()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    head = ledger.integrate_now()
    leaves = _leaves(engine)
    assert head.size == 120 and [i for i, _ in leaves] == list(range(120))
    assert head.root == root_hash(_leaf_hashes(engine))
