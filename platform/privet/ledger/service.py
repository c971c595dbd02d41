"""Service functions behind the audit routes and the `privet audit` CLI (no FastAPI here).

- ``get_checkpoint``       GET /v1/audit/checkpoint
- ``list_events``          GET /v1/audit/events
- ``get_inclusion_proof``  GET /v1/audit/proofs/inclusion
- ``get_consistency_proof`` GET /v1/audit/proofs/consistency
- ``export_bundle``        GET /v1/audit/export   (writes a bundle file; stream it back)
- ``verify_ledger``        `privet audit verify` (the live database, like `privet-audit verify`)
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, and_, create_engine, exists, func, select, text
from sqlalchemy import event as sa_event
from sqlmodel import Session

from privet.db import READ_ONLY, is_sqlite
from privet.kit.errors import InvalidInputError, NotFoundError
from privet.ledger.sequencer import Ledger, get_ledger
from privet.ledger.storage import node_reader as _node_reader
from privet.ledger.tables import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerLeaf,
    LedgerLeafObject,
    LedgerNode,
    LedgerTreeState,
)
from privet_audit.bundle import BundleError, verify_entries, write_bundle
from privet_audit.checkpoint import NoteError, Verifier, open_checkpoint
from privet_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    subtree_hash,
)

__all__ = [
    "AuditEventPublic",
    "CheckpointPublic",
    "ConsistencyProofPublic",
    "EventPage",
    "ExportResult",
    "InclusionProofPublic",
    "LedgerVerifyReport",
    "export_bundle",
    "get_checkpoint",
    "get_consistency_proof",
    "get_inclusion_proof",
    "list_events",
    "verify_ledger",
]

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_leaf_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]
_states = LedgerTreeState.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]

MAX_PAGE = 1000
_CHUNK = 5000

Progress = Callable[[int, int], None]


# --- schemas ---------------------------------------------------------------------------


class CheckpointPublic(BaseModel):
    origin: str
    tree_size: int
    root_hash: str = Field(description="Hex SHA-256 Merkle root.")
    note: str = Field(description="The C2SP signed note; keep it to check the log later.")
    verifier_key: str = Field(description="C2SP verifier key of the log's signing key.")
    created_at: datetime


class AuditEventPublic(BaseModel):
    index: int = Field(description="Leaf index in the Merkle tree.")
    entry_id: int
    leaf_hash: str
    entry: str = Field(description="The exact canonical JSON the leaf hash commits to.")
    event: dict[str, Any]


class EventPage(BaseModel):
    items: list[AuditEventPublic]
    tree_size: int = Field(description="Leaves integrated when the page was read.")
    next_start: int | None = Field(description="Pass as start= for the next page; null: end.")


class InclusionProofPublic(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]
    root_hash: str
    checkpoint: str | None = Field(description="Signed checkpoint of tree_size, if one exists.")


class ConsistencyProofPublic(BaseModel):
    size1: int
    size2: int
    hashes: list[str]
    root1: str
    root2: str
    checkpoint1: str | None
    checkpoint2: str | None


class ExportResult(BaseModel):
    path: str
    tree_size: int
    checkpoints: int
    bytes: int
    verifier_key: str


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


# --- helpers ---------------------------------------------------------------------------


def _ledger(session: Session) -> Ledger:
    return get_ledger(session.get_bind())  # type: ignore[arg-type]


_read_engines: dict[str, Engine] = {}
_read_engines_lock = threading.Lock()


@contextmanager
def _bulk_reader(session: Session) -> Iterator[Connection]:
    """A connection for long reads (export, verify).

    On SQLite the platform's engine begins every transaction with BEGIN IMMEDIATE, which
    would hold the database write lock (and stall every writer) for the whole read; long
    reads use a plain read-only connection instead, whose statements each read a WAL
    snapshot. The ledger is append-only, so chunks read at different moments agree. On
    PostgreSQL the session's own connection is used.
    """
    bind = session.get_bind()
    if (
        not isinstance(bind, Engine)
        or not is_sqlite(bind)
        or bind.get_execution_options().get(READ_ONLY)  # privet.db.read_session: a snapshot
    ):
        yield session.connection()
        return
    url = bind.url.render_as_string(hide_password=False)
    with _read_engines_lock:
        engine = _read_engines.get(url)
        if engine is None:
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @sa_event.listens_for(engine, "connect")
            def _read_only(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.isolation_level = None  # no implicit BEGIN
                dbapi_connection.execute("PRAGMA query_only=ON")
                dbapi_connection.execute("PRAGMA busy_timeout=30000")

            _read_engines[url] = engine
    with engine.connect() as conn:
        yield conn


def _tree_size(conn: Connection) -> int:
    value = conn.execute(
        select(_states.c.tree_size).order_by(_states.c.id.desc()).limit(1)
    ).scalar()
    return int(value or 0)


def _checkpoint_note(conn: Connection, size: int) -> str | None:
    value = conn.execute(
        select(_checkpoints.c.note).where(_checkpoints.c.tree_size == size)
    ).scalar()
    return str(value) if value is not None else None


def _root(conn: Connection, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, _node_reader(conn))


# --- queries -----------------------------------------------------------------------------


def get_checkpoint(*, session: Session) -> CheckpointPublic:
    """The latest signed checkpoint; NotFoundError before the first one."""
    ledger = _ledger(session)
    row = (
        session.connection()
        .execute(
            select(_checkpoints.c.tree_size, _checkpoints.c.note, _checkpoints.c.created_at)
            .order_by(_checkpoints.c.tree_size.desc())
            .limit(1)
        )
        .first()
    )
    if row is None:
        raise NotFoundError("no checkpoint has been signed yet")
    cp = open_checkpoint(row[1], ledger.verifier)
    return CheckpointPublic(
        origin=cp.origin,
        tree_size=cp.size,
        root_hash=cp.root.hex(),
        note=row[1],
        verifier_key=str(ledger.verifier),
        created_at=row[2],
    )


def list_events(
    *,
    session: Session,
    type: str | None = None,
    object_id: str | None = None,
    project: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    start: int = 0,
    limit: int = 100,
) -> EventPage:
    """Integrated events in index order from ``start``, filtered; ``since`` inclusive,
    ``until`` exclusive (event time)."""
    if start < 0:
        raise InvalidInputError("start must be >= 0")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit must be between 1 and {MAX_PAGE}")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{name} needs a timezone, e.g. 2026-11-29T21:00:00Z")
    conn = session.connection()
    conds = [_leaves.c.idx >= start]
    if type is not None:
        conds.append(_leaves.c.type == type)
    if project is not None:
        conds.append(_leaves.c.project == project)
    if actor is not None:
        conds.append(_leaves.c.actor == actor)
    if since is not None:
        conds.append(_leaves.c.event_time >= since)
    if until is not None:
        conds.append(_leaves.c.event_time < until)
    if object_id is not None:
        conds.append(
            exists().where(
                _leaf_objects.c.object_id == object_id,
                _leaf_objects.c.leaf_idx == _leaves.c.idx,
            )
        )
    rows = conn.execute(
        select(_leaves.c.idx, _leaves.c.entry_id, _leaves.c.leaf_hash, _entries.c.event)
        .join(_entries, _entries.c.id == _leaves.c.entry_id)
        .where(and_(*conds))
        .order_by(_leaves.c.idx)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for idx, entry_id, lh, event in rows:
        data = bytes(event)
        items.append(
            AuditEventPublic(
                index=int(idx),
                entry_id=int(entry_id),
                leaf_hash=bytes(lh).hex(),
                entry=data.decode("utf-8", "replace"),
                event=json.loads(data),
            )
        )
    return EventPage(
        items=items,
        tree_size=_tree_size(conn),
        next_start=int(rows[-1][0]) + 1 if more else None,
    )


def _proof_size(conn: Connection, session: Session, tree_size: int | None) -> int:
    integrated = _tree_size(conn)
    if tree_size is None:
        value = conn.execute(select(func.max(_checkpoints.c.tree_size))).scalar()
        if value is None:
            raise NotFoundError("no checkpoint has been signed yet")
        tree_size = int(value)
    if not 0 <= tree_size <= integrated:
        raise InvalidInputError(
            f"tree_size {tree_size} is outside the integrated tree (size {integrated})"
        )
    return tree_size


def get_inclusion_proof(
    *,
    session: Session,
    index: int | None = None,
    entry_id: int | None = None,
    tree_size: int | None = None,
) -> InclusionProofPublic:
    """Inclusion proof of leaf ``index`` (or of the leaf integrating ``entry_id``) in the
    tree of ``tree_size`` (default: the latest checkpoint's size)."""
    conn = session.connection()
    if (index is None) == (entry_id is None):
        raise InvalidInputError("give exactly one of index and entry_id")
    if entry_id is not None:
        found = conn.execute(select(_leaves.c.idx).where(_leaves.c.entry_id == entry_id)).scalar()
        if found is None:
            raise NotFoundError(f"entry {entry_id} is not integrated (yet)")
        index = int(found)
    assert index is not None
    size = _proof_size(conn, session, tree_size)
    if not 0 <= index < size:
        raise InvalidInputError(f"index {index} is not in the tree of size {size}")
    node = _node_reader(conn)
    hashes = inclusion_proof(index, size, node)
    return InclusionProofPublic(
        index=index,
        tree_size=size,
        leaf_hash=node(0, index).hex(),
        hashes=[h.hex() for h in hashes],
        root_hash=_root(conn, size).hex(),
        checkpoint=_checkpoint_note(conn, size),
    )


def get_consistency_proof(
    *, session: Session, size1: int, size2: int | None = None
) -> ConsistencyProofPublic:
    """Consistency proof from the tree of ``size1`` to ``size2`` (default: latest
    checkpoint's size)."""
    conn = session.connection()
    size2 = _proof_size(conn, session, size2)
    if not 0 <= size1 <= size2:
        raise InvalidInputError(f"need 0 <= size1 <= size2, got {size1} and {size2}")
    node = _node_reader(conn)
    return ConsistencyProofPublic(
        size1=size1,
        size2=size2,
        hashes=[h.hex() for h in consistency_proof(size1, size2, node)],
        root1=_root(conn, size1).hex(),
        root2=_root(conn, size2).hex(),
        checkpoint1=_checkpoint_note(conn, size1),
        checkpoint2=_checkpoint_note(conn, size2),
    )


# --- export --------------------------------------------------------------------------------


def _iter_leaf_entries(
    conn: Connection, size: int, progress: Progress | None = None
) -> Iterator[tuple[int, int | None, bytes | None, bytes | None]]:
    """(index, entry id, stored leaf hash, entry bytes) for leaves [0, size) in index
    order; entry bytes None when the entry row is gone; stops early at a missing index."""
    start = 0
    while start < size:
        end = min(size, start + _CHUNK)
        rows = conn.execute(
            select(_leaves.c.idx, _leaves.c.entry_id, _leaves.c.leaf_hash, _entries.c.event)
            .select_from(_leaves.outerjoin(_entries, _entries.c.id == _leaves.c.entry_id))
            .where(_leaves.c.idx >= start, _leaves.c.idx < end)
            .order_by(_leaves.c.idx)
        ).all()
        for idx, eid, lh, event in rows:
            yield (
                int(idx),
                int(eid) if eid is not None else None,
                bytes(lh) if lh is not None else None,
                bytes(event) if event is not None else None,
            )
        if progress is not None:
            progress(end, size)
        if len(rows) < end - start:
            return
        start = end


def export_bundle(*, session: Session, out: Path, progress: Progress | None = None) -> ExportResult:
    """Write a privet-audit bundle of every event up to the latest checkpoint, all
    checkpoints and the verifier key to ``out`` (atomically). Call ``integrate_now``
    first to include everything committed so far."""
    ledger = _ledger(session)
    with _bulk_reader(session) as conn:
        return _export(conn, ledger, Path(out), progress)


def _export(conn: Connection, ledger: Ledger, out: Path, progress: Progress | None) -> ExportResult:
    notes = [
        str(n)
        for n in conn.execute(
            select(_checkpoints.c.note).order_by(_checkpoints.c.tree_size)
        ).scalars()
    ]
    if not notes:
        raise NotFoundError("no checkpoint has been signed yet: nothing to export")
    size = open_checkpoint(notes[-1], ledger.verifier).size

    def entries() -> Iterator[bytes]:
        for expected, (idx, _eid, _lh, event) in enumerate(
            _iter_leaf_entries(conn, size, progress)
        ):
            if idx != expected or event is None:
                raise RuntimeError(f"ledger damaged at index {expected}: run `privet audit verify`")
            yield event

    write_bundle(
        out,
        verifier_key=ledger.verifier,
        checkpoints=notes,
        entries=entries(),
        node=_node_reader(conn),
    )
    return ExportResult(
        path=str(out),
        tree_size=size,
        checkpoints=len(notes),
        bytes=out.stat().st_size,
        verifier_key=str(ledger.verifier),
    )


# --- verify the live database -----------------------------------------------------------
# The checks an auditor runs on a bundle (signatures, roots at every checkpoint, the
# trusted checkpoint) are privet_audit's `verify_entries`, fed from the database; here
# are only the checks of what the database alone holds: checkpoint rows, stored leaf
# hashes and tree nodes, the tree state. Every failure is a `BundleError`.


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
    stored hash equal to SHA-256(0x00 || entry); the stored perfect-subtree nodes that
    proofs are served from; the tree state; and that no entry below the sequencer's
    floor lost its leaf. Never raises for a bad ledger: see ``ok`` and ``message``.
    """
    started = time.perf_counter()
    ledger = _ledger(session)
    report = LedgerVerifyReport(ok=False, message="")
    try:
        verifier, report.key_source = _load_key(key, ledger)
    except (NoteError, OSError) as exc:
        report.message = f"bad key: {exc}"
        return report
    report.key = str(verifier)
    report.origin = verifier.name
    try:
        with _bulk_reader(session) as conn:
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
    entry's, and (``check_nodes``) the stored tree nodes the entries give. ``tree`` is
    the tree of every leaf streamed, checkpointed or not.
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
        self.events = self._events()

    def finish(self) -> None:
        """Check the leaves past the last checkpoint too (privet_audit stops there)."""
        for _ in self.events:
            pass
        if self.bad_node is not None:
            raise self.bad_node

    def _events(self) -> Iterator[bytes]:
        batch: list[tuple[int, int | None, bytes | None, bytes | None]] = []
        for row in _iter_leaf_entries(self.conn, self.n, self.progress):
            batch.append(row)
            if len(batch) == _CHUNK:
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

    def _checked(
        self, batch: list[tuple[int, int | None, bytes | None, bytes | None]]
    ) -> list[bytes]:
        events: list[bytes] = []
        hashes: list[bytes] = []
        for idx, eid, stored, event in batch:
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
        lost = _lost_entry(conn, int(state[1]), state[2])
        if lost is not None:
            raise BundleError(f"entry id {lost} was accepted but its leaf is gone")
    dup = conn.execute(
        select(_leaves.c.entry_id).group_by(_leaves.c.entry_id).having(func.count() > 1).limit(1)
    ).scalar()
    if dup is not None:
        raise BundleError(f"entry id {dup} is integrated twice")


def _lost_entry(conn: Connection, floor: int, floor_xid: int | None) -> int | None:
    """An entry below the sequencer's floor without a leaf, if any."""
    lost = conn.execute(
        text(
            "SELECT min(e.id) FROM ledger_entries e WHERE e.id <= :floor AND NOT EXISTS "
            "(SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id)"
        ),
        {"floor": floor},
    ).scalar()
    if lost is None and floor_xid is not None and conn.dialect.name == "postgresql":
        # PostgreSQL's floor is a transaction id: every entry inserted by a transaction
        # with an xid below it must be integrated.
        lost = conn.execute(
            text(
                "SELECT min(e.id) FROM ledger_entries e "
                "WHERE e.xid < CAST(CAST(:fx AS text) AS xid8) AND NOT EXISTS "
                "(SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id)"
            ),
            {"fx": int(floor_xid)},
        ).scalar()
    return None if lost is None else int(lost)


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
