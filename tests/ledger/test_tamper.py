"""Tampering by the database owner (triggers bypassed) is detected by `verify_ledger`
against a checkpoint the auditor kept earlier; so are rollbacks and forged checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from privet.db import create_db_engine, session_scope
from privet.kit.ids import utcnow
from privet.ledger import emit
from privet.ledger.emit import insert_entries
from privet.ledger.sequencer import Ledger
from privet.ledger.tables import LedgerLeaf, LedgerLeafObject, LedgerTimeZone
from privet.ledger.verify import LedgerVerifyReport, verify_ledger
from privet_audit.checkpoint import Checkpoint, Signer, generate_signing_key, sign_checkpoint

from .conftest import copy_database, drop_database_copy, make_ledger, owner_bypass
from .test_leaf_columns import ODD_ENTRIES


def _emit(engine: Engine, n: int, tag: str = "a") -> None:
    for i in range(n):
        with session_scope(engine) as s:
            emit(
                s,
                type="test.event",
                actor="prn_t",
                objects={"thing": f"{tag}_{i}"},
                details={"i": i, "tag": tag},
            )


_zones = LedgerTimeZone.__table__  # type: ignore[attr-defined]
_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]


def _verify(engine: Engine, trusted: str | None = None) -> LedgerVerifyReport:
    with session_scope(engine) as s:
        return verify_ledger(session=s, trusted_checkpoint=trusted)


@pytest.fixture
def kept(engine: Engine, ledger: Ledger) -> str:
    """60 events in two checkpointed rounds; returns the auditor's copy of the last note."""
    _emit(engine, 40)
    ledger.integrate_now()
    _emit(engine, 20, "b")
    head = ledger.integrate_now()
    assert head.checkpoint_size == 60 and head.checkpoint_note
    report = _verify(engine, head.checkpoint_note)
    assert report.ok, report.message
    assert report.entries_verified == 60 and report.checkpoints_verified >= 2
    return head.checkpoint_note


def _entry_of(conn: Connection, idx: int) -> int:
    return int(
        conn.execute(
            text("SELECT entry_id FROM ledger_leaves WHERE idx = :i"), {"i": idx}
        ).scalar_one()
    )


def _set_event(conn: Connection, entry_id: int, event: bytes) -> None:
    conn.execute(
        text("UPDATE ledger_entries SET event = :e WHERE id = :i"), {"e": event, "i": entry_id}
    )


def _event(conn: Connection, entry_id: int) -> bytes:
    return bytes(
        conn.execute(
            text("SELECT event FROM ledger_entries WHERE id = :i"), {"i": entry_id}
        ).scalar_one()
    )


def _truncate(conn: Connection, keep: int) -> None:
    """Cut the log back to ``keep`` leaves in every table, consistently."""
    conn.execute(
        text(
            "DELETE FROM ledger_entries WHERE id IN "
            "(SELECT entry_id FROM ledger_leaves WHERE idx >= :k)"
        ),
        {"k": keep},
    )
    conn.execute(text("DELETE FROM ledger_leaves WHERE idx >= :k"), {"k": keep})
    conn.execute(text("DELETE FROM ledger_leaf_objects WHERE leaf_idx >= :k"), {"k": keep})
    for level in range(1, 12):
        conn.execute(
            text("DELETE FROM ledger_nodes WHERE level = :l AND (idx + 1) * :w > :k"),
            {"l": level, "w": 1 << level, "k": keep},
        )
    conn.execute(text("DELETE FROM ledger_tree_states WHERE tree_size > :k"), {"k": keep})
    conn.execute(text("DELETE FROM ledger_checkpoints WHERE tree_size > :k"), {"k": keep})


def _alter_entry(conn: Connection) -> None:
    eid = _entry_of(conn, 7)
    ev = json.loads(_event(conn, eid))
    ev["outcome"] = "deny"
    _set_event(conn, eid, json.dumps(ev, sort_keys=True, separators=(",", ":")).encode())


def _alter_entry_and_leaf_hash(conn: Connection) -> None:
    from privet_audit.merkle import leaf_hash

    _alter_entry(conn)
    new = leaf_hash(_event(conn, _entry_of(conn, 7)))
    conn.execute(text("UPDATE ledger_leaves SET leaf_hash = :h WHERE idx = 7"), {"h": new})


def _delete_entry(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_entries WHERE id = :i"), {"i": _entry_of(conn, 7)})


def _delete_leaf(conn: Connection) -> None:
    conn.execute(text("DELETE FROM ledger_leaves WHERE idx = 7"))


def _swap_events(conn: Connection) -> None:
    a, b = _entry_of(conn, 7), _entry_of(conn, 8)
    ea, eb = _event(conn, a), _event(conn, b)
    _set_event(conn, a, eb)
    _set_event(conn, b, ea)


def _swap_leaves(conn: Connection) -> None:
    """Reorder two leaves with their hashes (each leaf still matches its entry)."""
    rows = {
        int(r[0]): (int(r[1]), bytes(r[2]))
        for r in conn.execute(
            text("SELECT idx, entry_id, leaf_hash FROM ledger_leaves WHERE idx IN (7, 8)")
        )
    }
    conn.execute(text("DELETE FROM ledger_leaves WHERE idx IN (7, 8)"))
    for idx, other in ((7, 8), (8, 7)):
        conn.execute(
            text(
                "INSERT INTO ledger_leaves (idx, entry_id, leaf_hash, type, event_time, "
                "integrated_at) VALUES (:i, :e, :h, 'test.event', '2026-01-01', '2026-01-01')"
            ),
            {"i": idx, "e": rows[other][0], "h": rows[other][1]},
        )


def _replace_checkpoint_forged(conn: Connection) -> None:
    """Replace the first checkpoint by one signed with the attacker's own key."""
    row = conn.execute(
        text("SELECT tree_size, root_hash FROM ledger_checkpoints ORDER BY id LIMIT 1")
    ).one()
    origin = conn.execute(text("SELECT note FROM ledger_checkpoints LIMIT 1")).scalar_one()
    origin = origin.split("\n", 1)[0]
    attacker = Signer.from_pem(origin, generate_signing_key())
    note = sign_checkpoint(Checkpoint(origin, int(row[0]), bytes(row[1])), attacker)
    conn.execute(
        text("UPDATE ledger_checkpoints SET note = :n WHERE tree_size = :s"),
        {"n": note, "s": int(row[0])},
    )


def _swap_checkpoint_notes(conn: Connection) -> None:
    rows = conn.execute(text("SELECT id, note FROM ledger_checkpoints ORDER BY id")).all()
    (i1, n1), (i2, n2) = rows[0], rows[-1]
    conn.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE id = :i"), {"n": n2, "i": i1})
    conn.execute(text("UPDATE ledger_checkpoints SET note = :n WHERE id = :i"), {"n": n1, "i": i2})


CASES: dict[str, tuple[Callable[[Connection], None], str, int | None]] = {
    "update-entry": (_alter_entry, "altered", 7),
    "update-entry-and-leaf-hash": (_alter_entry_and_leaf_hash, "does not match", None),
    "delete-entry": (_delete_entry, "deleted", 7),
    "delete-leaf": (_delete_leaf, "missing", 7),
    "reorder-entries": (_swap_events, "altered", 7),
    "reorder-leaves": (_swap_leaves, "does not match", None),
    "truncate-tail": (lambda c: _truncate(c, 40), "rollback or truncation", 40),
    "truncate-tail-keep-checkpoints": (
        lambda c: c.execute(text("DELETE FROM ledger_leaves WHERE idx >= 55")),
        "truncation",
        55,
    ),
    "replace-checkpoint-forged-key": (_replace_checkpoint_forged, "checkpoint 0", None),
    "replace-checkpoint-reorder": (_swap_checkpoint_notes, "checkpoint", None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_owner_tampering_is_detected(engine: Engine, kept: str, case: str) -> None:
    tamper, needle, bad_entry = CASES[case]
    with owner_bypass(engine) as conn:
        tamper(conn)
    report = _verify(engine, kept)
    assert not report.ok
    assert needle in report.message, report.message
    if bad_entry is not None:
        assert report.bad_entry == bad_entry, report.message
    if case == "update-entry-and-leaf-hash" or case == "reorder-leaves":
        assert report.bad_range is not None and report.bad_range[0] <= 7 < report.bad_range[1]


def test_consistent_truncation_needs_the_kept_checkpoint(engine: Engine, kept: str) -> None:
    """An owner who cuts every table back consistently fools a verifier that kept
    nothing, but not one holding a checkpoint."""
    with owner_bypass(engine) as conn:
        _truncate(conn, 40)
    assert _verify(engine).ok
    report = _verify(engine, kept)
    assert not report.ok and "size 60" in report.message


def test_rewritten_and_resigned_log_is_a_fork(
    engine: Engine, ledger: Ledger, home: Path, kept: str
) -> None:
    """Someone holding the signing key rewrites history (cut to 40, append other events)
    and re-signs: self-consistent, but not the log the auditor saw."""
    with owner_bypass(engine) as conn:
        _truncate(conn, 40)
    attacker = make_ledger(engine, home)  # same key file, no cached tree
    _emit(engine, 20, "forged")
    head = attacker.integrate_now()
    assert head.checkpoint_size == 60
    assert _verify(engine).ok  # re-signed with the real key: consistent by itself
    report = _verify(engine, kept)
    assert not report.ok and "fork" in report.message


def test_rollback_to_an_older_copy(
    engine: Engine, ledger: Ledger, db_url: str, home: Path, tmp_path: Path
) -> None:
    _emit(engine, 30)
    ledger.integrate_now()
    backup_url = copy_database(engine, db_url, tmp_path, "backup")
    try:
        _emit(engine, 10, "later")
        kept = ledger.integrate_now().checkpoint_note
        assert _verify(engine, kept).ok
        # the database is "restored" from the backup: it verifies alone, not against kept
        old = create_db_engine(backup_url)
        make_ledger(old, home)
        assert _verify(old).ok
        report = _verify(old, kept)
        assert not report.ok and "rollback" in report.message
        old.dispose()
    finally:
        drop_database_copy(backup_url)


def test_forged_trusted_checkpoint_is_refused(engine: Engine, kept: str) -> None:
    forged = kept.replace(kept.split("\n")[2], "A" * 43 + "=")
    report = _verify(engine, forged)
    assert not report.ok and "trusted checkpoint" in report.message


def test_pinned_key_must_match(engine: Engine, kept: str) -> None:
    other = Signer.from_pem("privet.local/ledger", generate_signing_key()).verifier
    with session_scope(engine) as s:
        report = verify_ledger(session=s, key=str(other))
    assert not report.ok and "trusted key" in report.message


def test_deleting_every_checkpoint_is_caught_by_the_kept_one(engine: Engine, kept: str) -> None:
    """The log's entries still give the kept root, but the database lost every signed
    checkpoint: the auditor's note proves one existed."""
    with owner_bypass(engine) as conn:
        conn.execute(text("DELETE FROM ledger_checkpoints"))
    assert _verify(engine).ok  # alone, a log before its first checkpoint
    report = _verify(engine, kept)
    assert not report.ok and "rollback or truncation" in report.message, report.message


def _narrow_zone(conn: Connection) -> None:
    """Block 3's row claims its leaves all happened at its latest time: a window that
    ends before it skips the block's other events."""
    latest = conn.execute(select(_zones.c.time_max).where(_zones.c.block == 3)).scalar_one()
    conn.execute(update(_zones).where(_zones.c.block == 3).values(time_min=latest))


def _add_zone(conn: Connection) -> None:
    """A row for a block not written yet (it would also stop the sequencer there)."""
    times = conn.execute(select(_zones.c.time_min, _zones.c.time_max).limit(1)).one()
    conn.execute(insert(_zones).values(block=20, time_min=times[0], time_max=times[1]))


ZONE_CASES: dict[str, tuple[Callable[[Connection], None], str, list[int]]] = {
    "narrow-zone-row": (_narrow_zone, "the row was altered", [12, 16]),
    "delete-zone-row": (
        lambda c: c.execute(text("DELETE FROM ledger_time_zones WHERE block = 3")),
        "is missing",
        [12, 16],
    ),
    "add-zone-row": (_add_zone, "has 0 of its 4 leaves", [80, 84]),
}


@pytest.mark.parametrize("case", sorted(ZONE_CASES))
def test_zone_row_tampering_is_detected(
    engine: Engine, small_blocks: None, kept: str, case: str
) -> None:
    """The time-zone rows are in no hash: verify compares each with its block's leaves
    (blocks of 4 leaves here: 60 leaves, 15 rows, all verified by ``kept``)."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_time_zones")).scalar_one() == 15
    tamper, needle, bad_range = ZONE_CASES[case]
    with owner_bypass(engine) as conn:
        tamper(conn)
    report = _verify(engine, kept)
    assert not report.ok
    assert needle in report.message, report.message
    assert "time-zone row of block" in report.message
    assert report.bad_range == bad_range


def _move_time(conn: Connection) -> None:
    """Leaf 13 (block 3) claims to have happened a year earlier: out of every window
    that holds its real time."""
    when = conn.execute(select(_leaves.c.event_time).where(_leaves.c.idx == 13)).scalar_one()
    conn.execute(
        update(_leaves).where(_leaves.c.idx == 13).values(event_time=when - timedelta(days=365))
    )


def _move_time_and_zone(conn: Connection) -> None:
    """The same, with block 3's zone row rewritten to match: the zone check passes."""
    _move_time(conn)
    lo, hi = conn.execute(
        select(func.min(_leaves.c.event_time), func.max(_leaves.c.event_time)).where(
            _leaves.c.idx >= 12, _leaves.c.idx < 16
        )
    ).one()
    conn.execute(update(_zones).where(_zones.c.block == 3).values(time_min=lo, time_max=hi))


_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
_at_13 = _objects.c.leaf_idx == 13


def _copy(column: str, value: str) -> Callable[[Connection], None]:
    return lambda c: c.execute(update(_leaves).where(_leaves.c.idx == 13).values({column: value}))


def _column(name: str) -> str:
    return f"leaf 13: its {name} column is "


COPY_CASES: dict[str, tuple[Callable[[Connection], None], str, int | None]] = {
    "event-time": (_move_time, _column("event_time"), 13),
    "event-time-and-zone-row": (_move_time_and_zone, _column("event_time"), 13),
    "type": (_copy("type", "x.other"), _column("type"), 13),
    "project": (_copy("project", "prj_x"), _column("project"), 13),
    "actor": (_copy("actor", "prn_other"), _column("actor"), 13),
    "object-kind": (
        lambda c: c.execute(update(_objects).where(_at_13).values(kind="other")),
        "leaf 13: its ledger_leaf_objects row for object 'a_13' has kind 'other'",
        13,
    ),
    "object-id": (
        lambda c: c.execute(update(_objects).where(_at_13).values(object_id="a_99")),
        "leaf 13: its ledger_leaf_objects row for object 'a_13' (kind 'thing') is missing",
        13,
    ),
    "object-row-deleted": (
        lambda c: c.execute(delete(_objects).where(_at_13)),
        "leaf 13: its ledger_leaf_objects row for object 'a_13' (kind 'thing') is missing",
        13,
    ),
    "object-row-added-known-id": (
        lambda c: c.execute(insert(_objects).values(object_id="a_12", leaf_idx=13, kind="thing")),
        "leaf 13: ledger_leaf_objects has a row for object 'a_12' that its entry does not name",
        13,
    ),
    "object-row-added-new-id": (
        lambda c: c.execute(insert(_objects).values(object_id="z_1", leaf_idx=13, kind="thing")),
        "ledger_leaf_objects holds 61 rows for leaves 0..59 but their entries name 60",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(COPY_CASES))
def test_copied_column_tampering_is_detected(
    engine: Engine, small_blocks: None, kept: str, case: str
) -> None:
    """The leaf columns and object rows the queries filter on are in no hash: verify
    re-derives each from the entry's bytes, as the sequencer does, and names leaf and
    column."""
    tamper, needle, bad_entry = COPY_CASES[case]
    with owner_bypass(engine) as conn:
        tamper(conn)
    report = _verify(engine, kept)
    assert not report.ok
    assert needle in report.message, report.message
    assert report.bad_entry == bad_entry


def test_malformed_entries_copies_verify_and_their_fallback_time_is_checked(
    engine: Engine, ledger: Ledger
) -> None:
    """Entries that are no event, or have no valid time, get the sequencer's fallbacks
    (type ``invalid``, the entry's commit time): verify derives the same, and still
    catches a moved time on such a leaf (derived from ``created_at``)."""
    _emit(engine, 3)
    with session_scope(engine) as s:
        # not the empty entry (no bundle line can be empty: privet_audit refuses it)
        odd = [data for data in ODD_ENTRIES if data]
        insert_entries(s, [{"event": data, "created_at": utcnow()} for data in odd])
    ledger.integrate_now()
    assert _verify(engine).ok, _verify(engine).message
    idx = 3 + odd.index(b"not json")
    with owner_bypass(engine) as conn:
        when = conn.execute(select(_leaves.c.event_time).where(_leaves.c.idx == idx)).scalar_one()
        conn.execute(
            update(_leaves).where(_leaves.c.idx == idx).values(event_time=when + timedelta(1))
        )
    report = _verify(engine)
    assert not report.ok and report.bad_entry == idx
    assert f"leaf {idx}: its event_time column is " in report.message, report.message
