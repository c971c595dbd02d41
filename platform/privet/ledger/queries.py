"""Reading the ledger for the audit routes and the CLI: the latest checkpoint, events
(filtered, in index order) and inclusion and consistency proofs over the stored tree.

- ``get_checkpoint``        GET /v1/audit/checkpoint
- ``list_events``           GET /v1/audit/events
- ``get_inclusion_proof``   GET /v1/audit/proofs/inclusion
- ``get_consistency_proof`` GET /v1/audit/proofs/consistency
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, Unpack

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Integer, Select, and_, bindparam, func, select
from sqlmodel import Session

from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.paging import MAX_PAGE, check_limit
from privet.ledger.proofs import BatchedNodes, keys_read, tree_root
from privet.ledger.sequencer import session_ledger
from privet.ledger.tables import (
    LedgerCheckpoint,
    LedgerEntry,
    LedgerLeaf,
    LedgerLeafObject,
    LedgerTreeState,
)
from privet.ledger.zones import window_ranges
from privet_audit.checkpoint import open_checkpoint
from privet_audit.merkle import consistency_proof, inclusion_proof

__all__ = [
    "MAX_PAGE",
    "AuditEventPublic",
    "CheckpointPublic",
    "ConsistencyProofPublic",
    "EventPage",
    "EventQuery",
    "InclusionProofPublic",
    "events_statement",
    "get_checkpoint",
    "get_consistency_proof",
    "get_inclusion_proof",
    "list_events",
]

_entries = LedgerEntry.__table__  # type: ignore[attr-defined]
_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_leaf_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
_states = LedgerTreeState.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]


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


# --- helpers ---------------------------------------------------------------------------


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


# --- queries -----------------------------------------------------------------------------


def get_checkpoint(*, session: Session) -> CheckpointPublic:
    """The latest signed checkpoint; NotFoundError before the first one."""
    ledger = session_ledger(session)
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


def _check_window(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{name} needs a timezone, e.g. 2026-11-29T21:00:00Z")


class EventQuery(TypedDict, total=False):
    """The filters and the page of ``list_events`` (all optional)."""

    type: str | None
    object_id: str | None
    project: str | None
    since: datetime | None
    until: datetime | None
    actor: str | None
    start: int
    limit: int


def events_statement(*, below: int | None = None, **query: Unpack[EventQuery]) -> Select[Any]:
    """The page query of ``list_events`` (the plan tests EXPLAIN it). Leaf index is the
    keyset: ``start`` is a lower bound, so a deep page is an index range, never OFFSET.
    With ``object_id`` the page is driven by ``ledger_leaf_objects``' primary key
    (object_id, leaf_idx), already in leaf order. ``below`` bounds the leaf index from
    above (exclusive): a time window is read one range of ``window_ranges`` at a time."""
    _check_query(query)
    return _statement(query, below=below, fetch=query.get("limit", 100) + 1)


def _check_query(query: EventQuery) -> None:
    """Bad input is a 422 naming its rule before any statement is built or run."""
    if query.get("start", 0) < 0:
        raise InvalidInputError("start must be >= 0", rule="cursor")
    check_limit(query.get("limit", 100))
    _check_window(query.get("since"), query.get("until"))


def _statement(
    query: EventQuery, *, below: int | None, fetch: int, light: bool = False
) -> Select[Any]:
    """``light``: only the index and the entry (what a report reads by the thousand).
    The range and the row count are the named parameters ``lo``, ``hi`` (absent when
    ``below`` is None) and ``fetch``, so one statement serves every range of a window."""
    since, until, object_id = query.get("since"), query.get("until"), query.get("object_id")
    key = _leaves.c.idx
    leaves = select(_leaves.c.idx, _leaves.c.entry_id, _leaves.c.leaf_hash)
    if object_id is not None:
        key = _leaf_objects.c.leaf_idx
        leaves = leaves.select_from(_leaf_objects).join(_leaves, _leaves.c.idx == key)
        leaves = leaves.where(_leaf_objects.c.object_id == object_id)
    conds = [key >= bindparam("lo", query.get("start", 0), type_=key.type)]
    if below is not None:
        conds.append(key < bindparam("hi", below, type_=key.type))
    for name in ("type", "project", "actor"):
        value = query.get(name)
        if value is not None:
            conds.append(_leaves.c[name] == value)
    if since is not None:
        conds.append(_leaves.c.event_time >= since)
    if until is not None:
        conds.append(_leaves.c.event_time < until)
    leaves = (
        leaves.where(and_(*conds)).order_by(key).limit(bindparam("fetch", fetch, type_=Integer))
    )
    if since is None and until is None:
        stmt = leaves.add_columns(_entries.c.event).join(
            _entries, _entries.c.id == _leaves.c.entry_id
        )
        if light:
            stmt = stmt.with_only_columns(
                _leaves.c.idx, _entries.c.event, maintain_column_froms=True
            )
        return stmt
    # A window's leaves first, the entries of the page's rows only then: PostgreSQL, which
    # cannot know that a range's times are in the window, may read a range by bitmap and
    # sort it, and must not look up every entry of the range before the LIMIT.
    page = leaves.subquery("page")
    cols = [page.c.idx, _entries.c.event] if light else [*page.c, _entries.c.event]
    return (
        select(*cols)
        .select_from(page)
        .join(_entries, _entries.c.id == page.c.entry_id)
        .order_by(page.c.idx)
    )


def _page_rows(conn: Connection, query: EventQuery, *, light: bool = False) -> list[Any]:
    """Up to ``limit + 1`` rows of the page from ``start`` (one more says there is a next
    page). A time window is read range by range (``window_ranges``: only the blocks of
    leaves whose times can meet it, then the tail), each range an index range of its own,
    until the page is full. A window's statement is built once, each range only binds
    its bounds: building and keying a statement costs more CPU than running it."""
    _check_query(query)
    limit = query.get("limit", 100)
    since, until = query.get("since"), query.get("until")
    if since is None and until is None:
        return list(conn.execute(_statement(query, below=None, fetch=limit + 1, light=light)).all())
    if any(query.get(name) is not None for name in ("type", "project", "actor", "object_id")):
        _custom_plans(conn)
    rows = list[Any]()
    built: dict[bool, Select[Any]] = {}  # bounded range, range to the end
    ranges = window_ranges(conn, since=since, until=until, start=query.get("start", 0))
    for lo, hi in ranges:
        fetch = limit + 1 - len(rows)
        stmt = built.get(hi is not None)
        if stmt is None:
            stmt = built[hi is not None] = _statement(query, below=hi, fetch=fetch, light=light)
        bounds = {"lo": lo, "fetch": fetch} if hi is None else {"lo": lo, "hi": hi, "fetch": fetch}
        rows += conn.execute(stmt, bounds).all()
        if len(rows) > limit:
            break
    return rows


def _custom_plans(conn: Connection) -> None:
    """On PostgreSQL, plan a time window's range reads for their values (this
    transaction). psycopg prepares a statement run five times on a connection, and
    PostgreSQL then kept one generic plan for a window's range read, blind to whether
    ``type = $1`` is rare in the range: at 10^6 events it walked the primary key past
    15,000-31,000 leaves per range (3.5-17 ms) where the (type, idx) index reads the
    range's matches in 0.1-0.3 ms. A window alone is read along the primary key by any
    plan: it needs no extra statement. See docs/SCALING.md, "Time windows at 10^6"."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def list_events(*, session: Session, **query: Unpack[EventQuery]) -> EventPage:
    """Integrated events in index order from ``start``, filtered; ``since`` inclusive,
    ``until`` exclusive (event time)."""
    limit = query.get("limit", 100)
    conn = session.connection()
    rows = _page_rows(conn, query)
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


@dataclass(slots=True)
class EventRow:
    """An event as a report reads it by the thousand: no model, no leaf hash."""

    index: int
    entry: str
    event: dict[str, Any]


#: The C scanner of a default decoder (set in ``__init__``, so typeshed does not list it).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _parse(entry: str) -> Any:
    """``json.loads(entry)`` for a canonical entry (no whitespace around it), by the C
    scanner without the wrapper; anything else goes through ``json.loads``."""
    try:
        value, end = _scan(entry, 0)
    except StopIteration:
        end = -1
    return value if end == len(entry) else json.loads(entry)


def iter_event_rows(*, session: Session, **query: Unpack[EventQuery]) -> Iterator[EventRow]:
    """Every event ``list_events`` would page through from ``start`` (same filters, same
    keyset statement), read ``limit`` rows at a time with only the index and the entry:
    the hot path of a report of many events."""
    limit = query.get("limit", MAX_PAGE)
    query = {**query, "limit": limit}
    conn = session.connection()
    while True:
        rows = _page_rows(conn, query, light=True)
        for idx, event in rows[:limit]:
            data = bytes(event)
            entry = data.decode("utf-8", "replace")
            yield EventRow(int(idx), entry, _parse(entry))
        if len(rows) <= limit:
            return
        query["start"] = int(rows[limit - 1][0]) + 1


def _proof_size(conn: Connection, tree_size: int | None) -> int:
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
    size = _proof_size(conn, tree_size)
    if not 0 <= index < size:
        raise InvalidInputError(f"index {index} is not in the tree of size {size}")
    node = BatchedNodes(conn)
    node.prefetch([(0, index), *keys_read(lambda n: inclusion_proof(index, size, n))])
    hashes = inclusion_proof(index, size, node)
    return InclusionProofPublic(
        index=index,
        tree_size=size,
        leaf_hash=node(0, index).hex(),
        hashes=[h.hex() for h in hashes],
        root_hash=tree_root(node, size).hex(),
        checkpoint=_checkpoint_note(conn, size),
    )


def get_consistency_proof(
    *, session: Session, size1: int, size2: int | None = None
) -> ConsistencyProofPublic:
    """Consistency proof from the tree of ``size1`` to ``size2`` (default: latest
    checkpoint's size)."""
    conn = session.connection()
    size2 = _proof_size(conn, size2)
    if not 0 <= size1 <= size2:
        raise InvalidInputError(f"need 0 <= size1 <= size2, got {size1} and {size2}")
    node = BatchedNodes(conn)
    node.prefetch(keys_read(lambda n: consistency_proof(size1, size2, n)))
    return ConsistencyProofPublic(
        size1=size1,
        size2=size2,
        hashes=[h.hex() for h in consistency_proof(size1, size2, node)],
        root1=tree_root(node, size1).hex(),
        root2=tree_root(node, size2).hex(),
        checkpoint1=_checkpoint_note(conn, size1),
        checkpoint2=_checkpoint_note(conn, size2),
    )
