"""``seed_ledger``: write a year of a bank's audit traffic into a database, fast, through
the platform's own ledger path.

Events are encoded and inserted by the functions every writer uses (``encode_events``,
``insert_entries``: one statement per batch, committed like any transaction), then
integrated by the process's ``Ledger`` in ordinary sequencer passes, which write the
leaves, object index, nodes and tree states and sign checkpoints at the configured
cadence. Nothing is written around the ledger, so ``privet audit verify`` passes on the
result and queries, proofs and reports see what production would hold. The project and
the people of the traffic are created first by the auth services (``people``), so the
project exists and every actor is a principal with a role in it.

The seeded log is bracketed by two events, ``dev.seed_started`` and
``dev.seed_finished`` (in the log for good: a seeded database says so). A database
whose log is empty, or starts with the first and ends with the second, holds seed data
only and may be seeded again; any other is refused unless ``force``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, text

from privet import migrate
from privet.auth.tables import Project
from privet.db import session_scope
from privet.devdata.people import create_people
from privet.devdata.rows import DomainRows
from privet.devdata.traffic import DEFAULT_START, BankTraffic
from privet.kit.errors import ConflictError, InvalidInputError
from privet.ledger.emit import EventSpec, encode_events, insert_entries
from privet.ledger.sequencer import Ledger, get_ledger

__all__ = ["MAX_EVENTS", "SEED_FINISHED", "SEED_STARTED", "SeedError", "SeedResult", "seed_ledger"]

SEED_STARTED = "dev.seed_started"
SEED_FINISHED = "dev.seed_finished"
MAX_EVENTS = 100_000_000
#: Events per transaction: large enough that commits (an fsync each) cost little, small
#: enough that a batch's rows stay a few MB of memory.
DEFAULT_BATCH = 5_000

#: (done, total) after every batch.
Progress = Callable[[int, int], None]


class SeedError(ConflictError):
    """The database holds data that is not seed data (or a seed that did not finish)."""

    slug = "seed-refused"
    title = "Seeding refused"


@dataclass
class SeedResult:
    """What a seed wrote: its events (brackets included) by type, and the tree after it."""

    events: int
    seconds: float
    tree_size: int
    checkpoint_size: int
    project: str
    by_type: dict[str, int] = field(default_factory=dict)
    #: domain rows written, by table
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def seed_ledger(
    *,
    engine: Engine,
    events: int,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    batch: int = DEFAULT_BATCH,
    force: bool = False,
    progress: Progress | None = None,
) -> SeedResult:
    """Append ``events`` events of a year of a bank's traffic (from ``start``) and
    integrate them; migrates an empty database first.

    Raises ``InvalidInputError`` for a bad size or a database behind this version's
    schema, ``SeedError`` for a database holding non-seed data (unless ``force``)."""
    if not 1 <= events <= MAX_EVENTS:
        raise InvalidInputError(f"events must be between 1 and {MAX_EVENTS:,}, not {events}")
    if not 1 <= batch <= 100_000:
        raise InvalidInputError(f"batch must be between 1 and 100,000, not {batch}")
    if start.tzinfo is None:
        raise InvalidInputError("start must be a timezone-aware time (e.g. 2026-01-01T00:00Z)")
    _prepare(engine, force)
    began = time.perf_counter()
    with engine.connect() as conn:
        run = int(conn.execute(select(func.count()).select_from(Project)).scalar_one())
    traffic = BankTraffic(total=events, seed=seed, start=start, run=run)
    counts: Counter[str] = Counter()
    details = {"events": events, "seed": seed, "start": start.date().isoformat()}
    _append(engine, [EventSpec(SEED_STARTED, None, details=details)], None, counts)
    ledger = get_ledger(engine)
    before = ledger.integrate_now(checkpoint=False).size
    with session_scope(engine) as session:
        create_people(session, traffic.actors)
    counts.update(_types_from(engine, ledger, before))
    stream = traffic.events()
    done = 0
    while done < events:
        chunk = [pair for _, pair in zip(range(min(batch, events - done)), stream, strict=False)]
        _append(engine, [spec for _, spec in chunk], [at for at, _ in chunk], counts, traffic.rows)
        ledger.integrate_now(checkpoint=False)  # ordinary passes: checkpoints as configured
        done += len(chunk)
        if progress is not None:
            progress(done, events)
    _append(engine, [EventSpec(SEED_FINISHED, None, details=details)], None, counts)
    head = ledger.integrate_now(checkpoint=True)
    return SeedResult(
        events=sum(counts.values()),
        seconds=time.perf_counter() - began,
        tree_size=head.size,
        checkpoint_size=head.checkpoint_size,
        project=traffic.actors.project,
        by_type=dict(counts.most_common()),
        rows=dict(traffic.rows.written),
    )


def _append(
    engine: Engine,
    specs: list[EventSpec],
    at: list[datetime] | None,
    counts: Counter[str],
    rows: DomainRows | None = None,
) -> None:
    """One transaction of events (and the domain rows they name), as any writer commits
    them."""
    with session_scope(engine) as session:
        insert_entries(session, encode_events(specs, at=at))
        if rows is not None:
            rows.flush(session.connection())
    counts.update(spec.type for spec in specs)


def _types_from(engine: Engine, ledger: Ledger, start: int) -> dict[str, int]:
    """The event types of the leaves from index ``start`` on (once integrated)."""
    ledger.integrate_now(checkpoint=False)
    with engine.connect() as conn:
        rows = conn.execute(_TYPES_FROM, {"start": start}).all()
    return {str(kind): int(n) for kind, n in rows}


_TYPES_FROM = text("SELECT type, count(*) FROM ledger_leaves WHERE idx >= :start GROUP BY type")


def _prepare(engine: Engine, force: bool) -> None:
    if migrate.current_revision(engine) is None:
        migrate.upgrade(engine)
    elif not migrate.is_current(engine):
        raise InvalidInputError(
            "the database schema is behind this version of privet: run `privet db upgrade` "
            "before seeding"
        )
    with engine.connect() as conn:
        found = _not_seed_only(conn)
    if found is not None and not force:
        raise SeedError(
            f"refusing to seed: the database already holds data that is not seed data "
            f"({found}); seed an empty database, or pass --force to append seed events to "
            "this one (they stay in its ledger for good)"
        )


_ENDS = text(
    "SELECT (SELECT event FROM ledger_entries ORDER BY id LIMIT 1), "
    "(SELECT event FROM ledger_entries ORDER BY id DESC LIMIT 1)"
)


def _not_seed_only(conn: Connection) -> str | None:
    """Why the log is not seed data only (None: it is). The ledger records every state
    change, so a log bracketed by the seed's own events holds nothing else."""
    first, last = conn.execute(_ENDS).one()
    if first is None:
        return None
    first_type, last_type = _type_of(first), _type_of(last)
    if first_type != SEED_STARTED:
        return f"its ledger starts with a {first_type!r} event"
    if last_type != SEED_FINISHED:
        return f"its ledger ends with a {last_type!r} event, not {SEED_FINISHED!r}"
    return None


def _type_of(event: bytes | memoryview) -> str:
    try:
        parsed = json.loads(bytes(event))
    except ValueError:
        return "unreadable"
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    return kind if isinstance(kind, str) else "unreadable"
