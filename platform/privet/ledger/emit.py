"""``emit``: the one way the platform records an audit event.

The event is inserted into ``ledger_entries`` in the caller's transaction, so the state
change and its event commit together or not at all; once the transaction commits the
event is durable (the database's commit is) and the sequencer integrates it into the
Merkle tree shortly after (see sequencer.py). ``emit`` never touches the tree itself, so
writers never wait for each other beyond the database's own row insert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from privet.kit.ids import utcnow
from privet.ledger.settings import get_ledger_settings
from privet.ledger.tables import LedgerEntry
from privet_audit.canonical import CanonicalError
from privet_audit.events import EventError, format_time, make_event

__all__ = ["EventSpec", "LedgerEventError", "emit", "emit_many", "on_commit_with_events"]

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_PENDING = "privet.ledger.pending"


class LedgerEventError(ValueError):
    """An event was refused: it breaks the event schema (e.g. a float, a bad id) or is too
    large. This is a programming error in the caller (events carry ids, digests and small
    non-personal facts only), so it is not a user-facing 4xx."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event for ``emit_many``; the fields mean what ``emit``'s arguments mean."""

    type: str
    actor: str | None
    project: str | None = None
    objects: Mapping[str, str] | None = None
    digests: Mapping[str, str] | None = None
    outcome: str = "ok"
    details: Mapping[str, Any] | None = None


def _encode(spec: EventSpec, time: str, limit: int) -> bytes:
    try:
        data = make_event(
            type=spec.type,
            actor=spec.actor,
            project=spec.project,
            objects=spec.objects,
            digests=spec.digests,
            outcome=spec.outcome,
            details=spec.details,
            time=time,
        )
    except (EventError, CanonicalError) as exc:
        raise LedgerEventError(f"audit event {spec.type!r} refused: {exc}") from exc
    if len(data) > limit:
        raise LedgerEventError(
            f"audit event {spec.type!r} refused: {len(data)} bytes once encoded, more than "
            f"the {limit}-byte limit (PRIVET_LEDGER_MAX_EVENT_BYTES); keep details small "
            "and record large content as a digest"
        )
    return data


def emit(
    session: Session,
    *,
    type: str,
    actor: str | None,
    project: str | None = None,
    objects: dict[str, str] | None = None,
    digests: dict[str, str] | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> int:
    """Add one audit event to the ledger in ``session``'s transaction; return its entry id.

    The entry id orders allocation only; the event's tree index is assigned when the
    sequencer integrates it after commit. Raises ``LedgerEventError`` for an event that
    breaks the schema (floats, non-id strings, unknown outcome) or is too large.
    """
    spec = EventSpec(type, actor, project, objects, digests, outcome, details)
    return emit_many(session, [spec])[0]


def emit_many(session: Session, events: Sequence[EventSpec]) -> list[int]:
    """Add a batch of events in one statement (one durable write at commit); their ids."""
    if not events:
        return []
    limit = get_ledger_settings().max_event_bytes
    now = utcnow()
    time = format_time(now)
    rows = [{"event": _encode(spec, time, limit), "created_at": now} for spec in events]
    if len(rows) == 1:
        result = session.execute(insert(_entries).returning(_entries.c.id), rows[0])
        ids = [int(result.scalar_one())]
    else:
        result = session.execute(
            insert(_entries).returning(_entries.c.id, sort_by_parameter_order=True), rows
        )
        ids = [int(i) for i in result.scalars().all()]
    session.info[_PENDING] = True
    return ids


# --- commit hook: wake the in-process integrator after a commit that emitted events ------

_commit_callbacks: list[Callable[[], None]] = []
_callbacks_lock = threading.Lock()


def on_commit_with_events(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` after any session commit that emitted events; returns an
    unregister function. The sequencer registers its ``kick`` here."""
    with _callbacks_lock:
        _commit_callbacks.append(callback)

    def unregister() -> None:
        with _callbacks_lock:
            if callback in _commit_callbacks:
                _commit_callbacks.remove(callback)

    return unregister


@sa_event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    if session.info.pop(_PENDING, False):
        for callback in list(_commit_callbacks):
            callback()


@sa_event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
