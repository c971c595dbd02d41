"""verify_entries: the same checks on a log read from elsewhere (the live database)."""

from __future__ import annotations

from privet_audit.bundle import verify_entries
from privet_audit.checkpoint import Signer

from .helpers import Log, event_bytes


def test_live_log_verifies(log: Log) -> None:
    res = verify_entries(
        iter([*log.entries, event_bytes(100)]),  # an entry not yet checkpointed is ignored
        checkpoints=list(reversed(log.notes)),
        key=log.vkey,
        trusted_checkpoint=log.checkpoint(33),
        strict_events=True,
    )
    assert res.ok, res.message
    assert res.entries_verified == 100 and res.trusted_size == 33


def test_live_log_tampering_is_located_between_checkpoints(log: Log) -> None:
    entries = list(log.entries)
    entries[64] = event_bytes(9064)
    res = verify_entries(entries, checkpoints=log.notes, key=log.vkey)
    assert not res.ok and res.bad_range == (60, 70) and res.bad_checkpoint == 6
    assert "checkpoint 6 (size 70)" in res.message


def test_live_log_truncation_and_rollback(log: Log) -> None:
    res = verify_entries(log.entries[:95], checkpoints=log.notes, key=log.vkey)
    assert not res.ok and "log truncated" in res.message and res.bad_entry == 95
    res = verify_entries(
        log.entries[:50],
        checkpoints=log.notes[:5],
        key=log.vkey,
        trusted_checkpoint=log.checkpoint(80),
    )
    assert not res.ok and "rollback or truncation" in res.message


def test_live_log_foreign_checkpoint(log: Log, other_signer: Signer) -> None:
    notes = [*log.notes[:3], log.checkpoint(40, other_signer)]
    res = verify_entries(log.entries, checkpoints=notes, key=log.vkey)
    assert not res.ok and res.bad_checkpoint == 3
    assert "no signature from a trusted key" in res.message
