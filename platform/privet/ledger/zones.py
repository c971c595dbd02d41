"""Time zones of the leaves: for every complete block of ``ZONE_LEAVES`` leaves, the
earliest and latest event time in it (``ledger_time_zones``). A time window of
GET /v1/audit/events becomes the few leaf-index ranges whose blocks can hold a match,
found in this small table, instead of a walk of every leaf between the cursor and the
window.

Why blocks and not one time bound: event times are stamped by the writers (every gateway
replica, ``at=`` replays, a seeded year) and the sequencer integrates in commit order, so
leaf order is only roughly time order, and one writer with a wrong clock would break any
monotone bound. A block's [earliest, latest] is exact whatever the times are: a leaf whose
time is in the window lies in a block whose range meets the window, or in the tail above
the last complete block (fewer than ``ZONE_LEAVES`` leaves, always read). A stray time
only widens its own block's range, so it costs one more block read, never a miss.

The sequencer writes a block's row in the pass that completes the block (same
transaction as its leaves); migration 0022 wrote the rows of the blocks that existed.
The table is append-only like the rest of the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Connection, func, insert, literal, select

from privet.ledger.tables import LedgerLeaf, LedgerTimeZone

__all__ = ["ZONE_LEAVES", "window_ranges", "write_zones"]

log = logging.getLogger(__name__)

#: Leaves per block. Changing it needs the table rebuilt (migration 0022 uses the value).
ZONE_LEAVES = 1024

#: Block rows read from the zone table by the first statement of a window's page, and
#: the longest first range (16 blocks: 16,384 leaves, which bounds what PostgreSQL sorts
#: when it reads a narrow window's range by bitmap); each further statement reads 4 times
#: more, up to 1,024 (a filter with sparse matches needs few statements).
_CHUNK = 16
_MAX_CHUNK = 1024

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_zones = LedgerTimeZone.__table__  # type: ignore[attr-defined]


def write_zones(conn: Connection, start: int, count: int) -> None:
    """The rows of every block that leaves ``start`` .. ``start + count - 1`` complete,
    from the stored leaves (the caller has just written them in this transaction)."""
    size = ZONE_LEAVES
    for block in range(start // size, (start + count) // size):
        lo, hi = block * size, (block + 1) * size
        conn.execute(
            insert(_zones).from_select(
                ["block", "time_min", "time_max"],
                select(
                    literal(block), func.min(_leaves.c.event_time), func.max(_leaves.c.event_time)
                ).where(_leaves.c.idx >= lo, _leaves.c.idx < hi),
            )
        )


def window_ranges(
    conn: Connection, *, since: datetime | None, until: datetime | None, start: int
) -> Iterator[tuple[int, int | None]]:
    """Leaf-index ranges ``[lo, hi)`` (``hi`` None: to the end), ascending and disjoint,
    from ``start`` on, outside of which no leaf has a time in ``[since, until)``."""
    size = ZONE_LEAVES
    first = start // size
    count, top = conn.execute(
        select(func.count(), func.max(_zones.c.block)).where(_zones.c.block >= first)
    ).one()
    if top is None:  # no complete block from start on: read the tail
        yield start, None
        return
    if count != top - first + 1:
        # a block without its row would be neither read nor in the tail: read it all
        log.warning("ledger_time_zones has gaps above block %d; reading every leaf", first)
        yield start, None
        return
    cond = [_zones.c.block <= top]
    if since is not None:
        cond.append(_zones.c.time_max >= since)
    if until is not None:
        cond.append(_zones.c.time_min < until)
    run: tuple[int, int] | None = None
    after, chunk = first - 1, _CHUNK
    while True:
        blocks = (
            conn.execute(
                select(_zones.c.block)
                .where(_zones.c.block > after, *cond)
                .order_by(_zones.c.block)
                .limit(chunk)
            )
            .scalars()
            .all()
        )  # all fetched: the caller reads leaves between two ranges
        got = 0
        for block in blocks:
            got, after = got + 1, int(block)
            if run is not None and run[1] == after:
                run = (run[0], after + 1)
                continue
            if run is not None:
                yield max(start, run[0] * size), run[1] * size
            run = (after, after + 1)
        if got < chunk:
            break
        chunk = min(chunk * 4, _MAX_CHUNK)
        if run is not None:  # a page rarely needs more: read the next blocks only if asked
            yield max(start, run[0] * size), run[1] * size
            run = None
    tail = (top + 1) * size
    if run is not None and run[1] == top + 1:  # the last run reaches the tail: one range
        yield max(start, run[0] * size), None
        return
    if run is not None:
        yield max(start, run[0] * size), run[1] * size
    yield max(start, tail), None
