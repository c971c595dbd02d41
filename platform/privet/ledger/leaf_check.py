"""Verify's check of what the queries filter on and no hash covers: each leaf's columns
copied out of its entry (``ledger_leaves``: type, project, actor, event time) and its
``ledger_leaf_objects`` rows, re-derived from the entry's bytes with
``leaf_rows.leaf_copies``, the function the sequencer writes them with. An owner who
changes a copy hides or moves the event in every query, time window and report while
the tree still verifies. Fed by verify's one pass over the leaves, a batch at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from privet.ledger.leaf_rows import COPIED_COLUMNS, LeafCopies, LeafObjects, leaf_copies
from privet.ledger.tables import LedgerEntry, LedgerLeaf, LedgerLeafObject
from privet_audit.bundle import BundleError

__all__ = ["COPY_READ", "CopyCheck"]

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]

#: Read with each leaf by verify's statement: its copied columns as stored.
COPY_READ = tuple(_leaves.c[name] for name in COPIED_COLUMNS)

#: What an entry without a valid event time is derived with first; the write path's own
#: fallback (its commit time) is read only for such an entry, off the hot path.
_NO_TIME = datetime.min.replace(tzinfo=UTC)

#: Object ids per statement when reading a batch's stored object rows.
_IN_SLICE = 1000

#: One leaf of a batch: index, entry bytes, its copied columns as stored.
CheckedLeaf = tuple[int, bytes, Sequence[Any]]


class CopyCheck:
    """The first copy that is not what its entry says (``bad``), leaves in index order."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.bad: BundleError | None = None
        self.object_rows = 0

    def add(self, batch: Sequence[CheckedLeaf]) -> None:
        """Check a batch of consecutive leaves: columns, then their object rows (read by
        primary key, the object ids the entries name within the batch's index range)."""
        named: dict[tuple[str, int], str] = {}
        for idx, event, stored in batch:
            copies, objects = self._derived(idx, event)
            if self.bad is None:
                self.bad = _bad_column(idx, stored, copies)
            for oid, kind in objects:
                named[(oid, idx)] = kind
        self.object_rows += len(named)
        if self.bad is None and batch:
            self.bad = _bad_objects(self.conn, named, batch[0][0], batch[-1][0])

    def finish(self, n: int) -> BundleError | None:
        """The first bad copy, else whether ``ledger_leaf_objects`` holds rows for leaves
        below ``n`` beyond those the entries name (one with an object id no entry of its
        batch names is found only by this count)."""
        if self.bad is not None:
            return self.bad
        stored = self.conn.execute(
            select(func.count()).select_from(_objects).where(_objects.c.leaf_idx < n)
        ).scalar_one()
        if int(stored) != self.object_rows:
            return BundleError(
                f"ledger_leaf_objects holds {stored} rows for leaves 0..{n - 1} but their "
                f"entries name {self.object_rows}: rows were added or removed, and the "
                "object filter of the audit events would show events under the wrong object"
            )
        return None

    def _derived(self, idx: int, event: bytes) -> tuple[LeafCopies, LeafObjects]:
        copies, objects = leaf_copies(event, _NO_TIME)
        if copies[3] is _NO_TIME:  # no valid time in the entry: the sequencer's fallback
            created, integrated = self.conn.execute(
                select(_entries.c.created_at, _leaves.c.integrated_at)
                .select_from(_leaves.join(_entries, _entries.c.id == _leaves.c.entry_id))
                .where(_leaves.c.idx == idx)
            ).one()
            copies, objects = leaf_copies(event, created or integrated)
        return copies, objects


def _bad_column(idx: int, stored: Sequence[Any], derived: LeafCopies) -> BundleError | None:
    for column, have, want in zip(COPIED_COLUMNS, stored, derived, strict=True):
        if have != want:
            return BundleError(
                f"leaf {idx}: its {column} column is {have!r} but its entry says {want!r}: "
                "the copy was altered, and queries and reports filtering on it would hide "
                "or misplace the event",
                entry=idx,
            )
    return None


def _bad_objects(
    conn: Connection, named: dict[tuple[str, int], str], lo: int, hi: int
) -> BundleError | None:
    """The first leaf in [lo, hi] whose stored object rows (for the ids named in the
    batch) differ from what its entry names."""
    oids = sorted({oid for oid, _ in named})
    stored: dict[tuple[str, int], str] = {}
    for k in range(0, len(oids), _IN_SLICE):
        rows = conn.execute(
            select(_objects.c.object_id, _objects.c.leaf_idx, _objects.c.kind).where(
                _objects.c.object_id.in_(oids[k : k + _IN_SLICE]),
                _objects.c.leaf_idx >= lo,
                _objects.c.leaf_idx <= hi,
            )
        ).all()
        stored.update({(str(o), int(i)): str(kind) for o, i, kind in rows})
    if stored == named:
        return None
    idx, oid = min(
        (i, o)
        for o, i in stored.keys() ^ named.keys()
        | {key for key in named.keys() & stored.keys() if named[key] != stored[key]}
    )
    want, have = named.get((oid, idx)), stored.get((oid, idx))
    if have is None:
        what = f"its ledger_leaf_objects row for object {oid!r} (kind {want!r}) is missing"
    elif want is None:
        what = f"ledger_leaf_objects has a row for object {oid!r} that its entry does not name"
    else:
        what = f"its ledger_leaf_objects row for object {oid!r} has kind {have!r}, not {want!r}"
    return BundleError(
        f"leaf {idx}: {what}: the row was altered, and the object filter of the audit "
        "events would hide or misplace the event",
        entry=idx,
    )
