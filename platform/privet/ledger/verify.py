"""Verifying the live ledger (`privet audit verify`, POST /v1/audit:verify) as
`privet-audit verify` verifies a bundle, and more.

The checks an auditor runs on a bundle (signatures, roots at every checkpoint, the
trusted checkpoint) are privet_audit's ``verify_entries``, fed from the database; here
are only the checks of what the database alone holds: checkpoint rows, stored leaf
hashes and tree nodes, the tree state, the time-zone rows. Every failure is a
``BundleError``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Integer, String, cast, func, literal_column, or_, select, text
from sqlmodel import Session

from privet.ledger import zones
from privet.ledger.dialects import dialect_of
from privet.ledger.leaf_check import COPY_READ, CopyCheck
from privet.ledger.reader import CHUNK, LeafEntry, Progress, bulk_reader, iter_leaf_rows
from privet.ledger.sequencer import Ledger, session_ledger
from privet.ledger.tables import (
    LedgerCheckpoint,
    LedgerLeaf,
    LedgerNode,
    LedgerTimeZone,
    LedgerTreeState,
)
from privet_audit.bundle import BundleError, verify_entries
from privet_audit.checkpoint import NoteError, Verifier
from privet_audit.merkle import CompactRange, Node, leaf_hash

__all__ = ["LedgerVerifyReport", "verify_ledger"]

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]
_states = LedgerTreeState.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]
_zones = LedgerTimeZone.__table__  # type: ignore[attr-defined]


class LedgerVerifyReport(BaseModel):
    ok: bool
    message: str
    origin: str = ""
    tree_size: int = 0
    root_hash: str = ""
    entries_verified: int = 0
    checkpoints_verified: int = 0
    key: str = ""
    key_source: str = ""
    trusted_size: int | None = None
    bad_entry: int | None = None
    # [start, end) of the entries a bad root covers; a list, not a tuple[int, int], whose
    # OpenAPI form (an `items` array) is not a valid OpenAPI 3.1 schema
    bad_range: list[int] | None = Field(default=None, min_length=2, max_length=2)
    bad_checkpoint: int | None = None
    seconds: float = 0.0
    warnings: list[str] = []


def _load_key(key: str | None, ledger: Ledger) -> tuple[Verifier, str]:
    if key is None:
        return ledger.verifier, "local signing key"
    text_key = key.strip()
    path = Path(text_key)
    if "+" not in text_key and path.exists():
        text_key = path.read_text("utf-8").strip()
    return Verifier.parse(text_key), "pinned"


def verify_ledger(
    *,
    session: Session,
    trusted_checkpoint: str | None = None,
    key: str | None = None,
    check_nodes: bool = True,
    progress: Progress | None = None,
) -> LedgerVerifyReport:
    """Check the live ledger as `privet-audit verify` checks a bundle, and more.

    privet_audit checks every checkpoint's signature (with ``key``, a C2SP verifier key,
    else the local signing key) and recomputes the root from the entries at every
    checkpoint size and at the auditor's ``trusted_checkpoint`` (signed note text). The
    database's own records are checked too: checkpoint rows equal to their notes and
    growing in signing order; every leaf index present once, its entry present and its
    stored hash equal to SHA-256(0x00 || entry) and its copied columns (type, project,
    actor, event time) what the entry says; the stored perfect-subtree nodes that
    proofs are served from; the tree state; that no entry below the sequencer's floor
    lost its leaf; and the time-zone rows that time windows are read through. Never
    raises for a bad ledger: see ``ok`` and ``message``.
    """
    started = time.perf_counter()
    ledger = session_ledger(session)
    report = LedgerVerifyReport(ok=False, message="")
    try:
        verifier, report.key_source = _load_key(key, ledger)
    except (NoteError, OSError) as exc:
        report.message = f"bad key: {exc}"
        return report
    report.key = str(verifier)
    report.origin = verifier.name
    try:
        with bulk_reader(session) as conn:
            _verify(conn, verifier, trusted_checkpoint, check_nodes, progress, report)
    except BundleError as exc:
        report.message = str(exc)
        report.bad_entry = exc.entry
        report.bad_range = list(exc.entry_range) if exc.entry_range else None
        report.bad_checkpoint = exc.checkpoint
        report.seconds = time.perf_counter() - started
        return report
    report.ok = True
    report.seconds = time.perf_counter() - started
    trusted = (
        f", extends trusted checkpoint of size {report.trusted_size}"
        if report.trusted_size is not None
        else ""
    )
    report.message = (
        f"OK: {report.entries_verified} entries, {report.checkpoints_verified} checkpoints of "
        f"{report.origin} verified (root {report.root_hash[:16]}… at size {report.tree_size}, "
        f"key {report.key_source}){trusted}"
    )
    return report


def _verify(
    conn: Connection,
    verifier: Verifier,
    trusted_note: str | None,
    check_nodes: bool,
    progress: Progress | None,
    report: LedgerVerifyReport,
) -> None:
    notes = _checkpoint_notes(conn)
    # One statement, one snapshot: the sequencer writes leaves and the tree state together,
    # so even while it runs the two agree here.
    snap = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM ledger_leaves), (SELECT max(idx) FROM ledger_leaves), "
            "(SELECT tree_size FROM ledger_tree_states ORDER BY id DESC LIMIT 1)"
        )
    ).one()
    n = 0 if snap[1] is None else int(snap[1]) + 1
    leaves = _StoredLeaves(conn, n, int(snap[0] or 0), check_nodes, progress, notes)
    if notes:
        result = verify_entries(
            leaves.events, checkpoints=notes, key=verifier, trusted_checkpoint=trusted_note
        )
        report.entries_verified = result.entries_verified
        report.trusted_size = result.trusted_size
        if not result.ok:
            raise BundleError(
                result.message,
                entry=result.bad_entry,
                entry_range=result.bad_range,
                checkpoint=result.bad_checkpoint,
            )
    elif trusted_note is not None:
        raise BundleError(
            "rollback or truncation: a trusted checkpoint was given but the log has no "
            "signed checkpoint (checkpoints deleted or the log rolled back)",
            entry=0,
        )
    leaves.finish()
    report.checkpoints_verified = len(notes)
    report.entries_verified = report.tree_size = n
    report.root_hash = leaves.tree.root().hex()
    _check_tree_state(conn, n, leaves.tree.root(), None if snap[2] is None else int(snap[2]))
    _check_zones(conn, n)


def _checkpoint_notes(conn: Connection) -> list[str]:
    """The signed notes in signing order, each the very checkpoint its row says, growing.

    Signatures (and which log they are of) are privet_audit's to check; this is the
    database's side: proofs are served with the note of the row of their size, and the
    sequencer extends the last.
    """
    rows = conn.execute(
        select(_checkpoints.c.tree_size, _checkpoints.c.root_hash, _checkpoints.c.note).order_by(
            _checkpoints.c.id
        )
    ).all()
    for k, (size, root, note) in enumerate(rows):
        said = str(note).split("\n")[1:3]  # a checkpoint note's size and root lines
        if said != [str(size), base64.b64encode(bytes(root)).decode()]:
            raise BundleError(
                f"checkpoint {k}: its row (size {size}) is not what its signed note says "
                f"(size {said[0] if said else '?'})",
                checkpoint=k,
            )
        if k and int(size) <= int(rows[k - 1][0]):
            raise BundleError(
                f"checkpoint {k} (size {size}) does not grow the log past checkpoint "
                f"{k - 1} (size {rows[k - 1][0]}): checkpoints replaced or reordered",
                checkpoint=k,
            )
    return [str(row[2]) for row in rows]


class _StoredLeaves:
    """The leaves' entries in index order, for privet_audit, with the database's checks.

    While they stream: every index present, its entry present, its stored leaf hash the
    entry's, its copied columns (the queries' filters, in no hash) what the entry's bytes
    give, and (``check_nodes``) the stored tree nodes the entries give. ``tree`` is the
    tree of every leaf streamed, checkpointed or not.
    """

    def __init__(
        self,
        conn: Connection,
        n: int,
        n_leaves: int,
        check_nodes: bool,
        progress: Progress | None,
        notes: list[str],
    ) -> None:
        self.conn, self.n, self.n_leaves = conn, n, n_leaves
        self.check_nodes, self.progress = check_nodes, progress
        self.signed = len(notes)
        self.last_signed = _note_size(notes[-1]) if notes else 0
        self.tree = CompactRange()
        self.bad_node: BundleError | None = None
        self.copies = CopyCheck(conn)
        self.events = self._events()

    def finish(self) -> None:
        """Check the leaves past the last checkpoint too (privet_audit stops there)."""
        for _ in self.events:
            pass
        for bad in (self.bad_node, self.copies.finish(self.n)):
            if bad is not None:
                raise bad

    def _events(self) -> Iterator[bytes]:
        batch: list[tuple[LeafEntry, tuple[Any, ...]]] = []
        for row in iter_leaf_rows(self.conn, self.n, self.progress, COPY_READ):
            batch.append(row)
            if len(batch) == CHUNK:
                yield from self._checked(batch)
                batch = []
        yield from self._checked(batch)
        if self.tree.size != self.n or self.n_leaves != self.n:
            raise BundleError(
                f"leaf index {self.tree.size} is missing (the tree has {self.n_leaves} leaves "
                f"up to index {self.n - 1}): a leaf was deleted",
                entry=self.tree.size,
            )
        if self.last_signed > self.n:  # privet_audit wants more entries than there are
            raise BundleError(
                f"truncation: checkpoint {self.signed - 1} has size {self.last_signed} but "
                f"the tree has only {self.n} leaves (entries {self.n}..{self.last_signed - 1} "
                "missing)",
                entry=self.n,
                checkpoint=self.signed - 1,
            )

    def _checked(self, batch: list[tuple[LeafEntry, tuple[Any, ...]]]) -> list[bytes]:
        events: list[bytes] = []
        hashes: list[bytes] = []
        for (idx, eid, stored, event), _ in batch:
            expected = self.tree.size + len(events)
            if idx != expected:
                raise BundleError(
                    f"leaf index {expected} is missing: a leaf was deleted or the log reordered",
                    entry=expected,
                )
            if event is None:
                raise BundleError(
                    f"entry {eid} of leaf {idx} is missing: it was deleted", entry=idx
                )
            h = leaf_hash(event)
            if stored != h:
                raise BundleError(
                    f"entry {idx} (entry id {eid}) does not match its leaf hash: it was altered",
                    entry=idx,
                )
            events.append(event)
            hashes.append(h)
        self.copies.add([(row[0][0], ev, row[1]) for row, ev in zip(batch, events, strict=True)])
        nodes = self.tree.extend(hashes, collect=self.check_nodes)
        if nodes and self.bad_node is None:
            try:
                _check_nodes(self.conn, nodes)
            except BundleError as exc:  # a root mismatch, if any, says more: report it first
                self.bad_node = exc
        return events


def _note_size(note: str) -> int:
    """The size line of a checkpoint note (already checked against its row)."""
    return int(note.split("\n")[1])


def _check_tree_state(conn: Connection, n: int, root: bytes, state_size: int | None) -> None:
    """The sequencer's own records: the state that produced size n (later passes may have
    added more since), no accepted entry without its leaf, no entry integrated twice."""
    if state_size is not None and state_size != n:
        raise BundleError(
            f"the tree state says size {state_size} but the leaves go up to size {n}: leaves "
            "were removed or added outside the sequencer",
            entry=min(state_size, n),
        )
    state = conn.execute(
        select(_states.c.root_hash, _states.c.floor_entry_id, _states.c.floor_xid)
        .where(_states.c.tree_size == n)
        .order_by(_states.c.id.desc())
        .limit(1)
    ).first()
    if state is None:
        if n:
            raise BundleError(f"the tree has {n} leaves but no tree state of that size")
    elif bytes(state[0]) != root:
        raise BundleError(
            f"the tree state of size {n} says root {bytes(state[0]).hex()[:16]}…, the "
            f"entries give {root.hex()[:16]}…"
        )
    else:
        lost = dialect_of(conn).lost_entry(conn, int(state[1]), state[2])
        if lost is not None:
            raise BundleError(f"entry id {lost} was accepted but its leaf is gone")
    dup = conn.execute(
        select(_leaves.c.entry_id).group_by(_leaves.c.entry_id).having(func.count() > 1).limit(1)
    ).scalar()
    if dup is not None:
        raise BundleError(f"entry id {dup} is integrated twice")


def _check_zones(conn: Connection, n: int) -> None:
    """Every time-zone row (zones.py) holds exactly its block's earliest and latest leaf
    times, as stored, and every block complete below size ``n`` has one. A narrowed row
    makes a time window of GET /v1/audit/events skip its events without a trace; these
    rows are not covered by any hash. Each statement reads one snapshot and a row commits
    with its block's leaves, so a sequencer running meanwhile cannot fail the check."""
    size = zones.ZONE_LEAVES
    block = (_leaves.c.idx // literal_column(str(int(size)), Integer)).label("block")
    agg = (
        select(
            block,
            func.count().label("n"),
            func.min(_leaves.c.event_time).label("lo"),
            func.max(_leaves.c.event_time).label("hi"),
        )
        .group_by(block)
        .subquery()
    )
    bad = conn.execute(
        select(
            _zones.c.block,
            agg.c.n,
            *(cast(c, String) for c in (_zones.c.time_min, _zones.c.time_max, agg.c.lo, agg.c.hi)),
        )
        .select_from(_zones.outerjoin(agg, agg.c.block == _zones.c.block))
        .where(
            or_(
                agg.c.n.is_(None),
                agg.c.n != size,
                _zones.c.time_min != agg.c.lo,
                _zones.c.time_max != agg.c.hi,
            )
        )
        .order_by(_zones.c.block)
        .limit(1)
    ).first()
    if bad is not None:
        b, count, zmin, zmax, lmin, lmax = bad
        first, end = int(b) * size, (int(b) + 1) * size
        where = f"the time-zone row of block {b} (leaves {first}..{end - 1})"
        if count != size:
            raise BundleError(
                f"{where} has {count or 0} of its {size} leaves: the row was added outside "
                "the sequencer",
                entry_range=(first, end),
            )
        raise BundleError(
            f"{where} says their times lie in [{zmin}, {zmax}] but they lie in [{lmin}, "
            f"{lmax}]: the row was altered, and time windows of the audit events could miss "
            "those events",
            entry_range=(first, end),
        )
    complete = n // size
    rows = conn.execute(select(_zones.c.block).where(_zones.c.block < complete)).scalars()
    missing = sorted(set(range(complete)) - {int(r) for r in rows})
    if missing:
        first = missing[0] * size
        raise BundleError(
            f"the time-zone row of block {missing[0]} (leaves {first}..{first + size - 1}) "
            f"is missing ({len(missing)} blocks have none): rows were deleted",
            entry_range=(first, first + size),
        )


def _check_nodes(conn: Connection, nodes: list[Node]) -> None:
    by_level: dict[int, dict[int, bytes]] = {}
    for nd in nodes:
        by_level.setdefault(nd.level, {})[nd.index] = nd.hash
    for level, want in by_level.items():
        lo, hi = min(want), max(want)
        got = {
            int(i): bytes(h)
            for i, h in conn.execute(
                select(_nodes.c.idx, _nodes.c.hash).where(
                    _nodes.c.level == level, _nodes.c.idx >= lo, _nodes.c.idx <= hi
                )
            ).all()
        }
        for i, h in sorted(want.items()):
            if got.get(i) != h:
                first = i << level
                raise BundleError(
                    f"stored tree node (level {level}, index {i}) is wrong or missing: proofs "
                    f"for entries {first}..{first + (1 << level) - 1} would not verify",
                    entry_range=(first, first + (1 << level)),
                )
