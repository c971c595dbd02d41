"""Ledger evidence for a report: the signed checkpoint it was built from and an inclusion
proof for every event it cites, in the form ``privet-audit verify-report`` checks offline
(see audit/privet_audit/report.py).

Proofs are built a chunk of events at a time from a few batched reads of the stored tree
(``privet.ledger.proofs``), and the checkpoint is read once per report. Events a report
cites by the thousand (the rows of an access log) are cited as a stream: a function that
reads them again, in index order, when the evidence is rendered, so they are never all
held in memory; such a stream yields light ``EventRow``s (index, entry, parsed event:
``Evidence.iter_rows``), not a model per event.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, Unpack

from sqlalchemy import select
from sqlmodel import Session

from privet.ledger import queries as ledger_service
from privet.ledger.proofs import PROOF_CHUNK, BatchedNodes, inclusion_proofs
from privet.ledger.tables import LedgerLeaf

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]

Event = ledger_service.AuditEventPublic
EventRow = ledger_service.EventRow


class Cited(Protocol):
    """What a citation needs of an event (an ``Event`` or, by the thousand, an
    ``EventRow``)."""

    @property
    def index(self) -> int: ...
    @property
    def entry(self) -> str: ...
    @property
    def event(self) -> dict[str, Any]: ...


EventStream = Callable[[], Iterator[Cited]]
"""Reads cited events again, in index order, each time it is called."""


class CitedEvents:
    """The ``ledger.events`` of a report: each cited event with its inclusion proof,
    produced chunk by chunk as it is iterated (re-iterable; ``len`` without reading)."""

    def __init__(self, evidence: Evidence) -> None:
        self._ev = evidence

    def __len__(self) -> int:
        return self._ev.count

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ev = self._ev
        nodes = BatchedNodes(ev.session.connection())
        cited: Iterator[Cited] = iter(ev.cited)
        items = _unique(heapq.merge(cited, *(s() for s in ev.streams), key=lambda i: i.index))
        while chunk := list(islice(items, PROOF_CHUNK)):
            proofs = inclusion_proofs(
                ev.session.connection(), [i.index for i in chunk], ev.size, nodes=nodes
            )
            for item, (_index, proof) in zip(chunk, proofs, strict=True):
                yield {
                    "index": item.index,
                    "type": item.event["type"],
                    "time": item.event["time"],
                    "entry": item.entry,
                    "inclusion_proof": [h.hex() for h in proof],
                }


def _unique(items: Iterable[Cited]) -> Iterator[Cited]:
    last = -1
    for item in items:
        if item.index != last:
            last = item.index
            yield item


class Evidence:
    """Collects cited events (by leaf index) up to one signed checkpoint, for the time
    window ``[since, until)`` the report covers (None: open)."""

    def __init__(
        self, session: Session, *, since: datetime | None = None, until: datetime | None = None
    ) -> None:
        self.session = session
        self.checkpoint = ledger_service.get_checkpoint(session=session)
        self.size = self.checkpoint.tree_size
        self.since, self.until = since, until
        self._events: dict[int, Event] = {}
        self.streams: list[EventStream] = []
        self._streamed: list[tuple[int, int, int]] = []  # (count, first, last) per stream

    def iter_events(
        self,
        *,
        object_id: str | None = None,
        type: str | None = None,
        types: Sequence[str] | None = None,
        project: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[Event]:
        """Events under the checkpoint matching the filters (``types``: type prefixes), in
        index order, read a page at a time (keyset on the index)."""
        start: int | None = 0
        while start is not None:
            page = ledger_service.list_events(
                session=self.session,
                type=type,
                object_id=object_id,
                project=project,
                actor=actor,
                since=since,
                until=until,
                start=start,
                limit=ledger_service.MAX_PAGE,
            )
            start = page.next_start
            for item in page.items:
                if item.index >= self.size:
                    return
                if types and not any(item.event["type"].startswith(t) for t in types):
                    continue
                yield item

    def iter_rows(self, **query: Unpack[ledger_service.EventQuery]) -> Iterator[EventRow]:
        """Events under the checkpoint matching ``query`` (the filters of ``list_events``)
        as light rows (index, entry, parsed event), for reports that read events by the
        thousand."""
        for row in ledger_service.iter_event_rows(session=self.session, **query):
            if row.index >= self.size:
                return
            yield row

    def events(self, *, limit: int = 1000, cite: bool = True, **filters: Any) -> list[Event]:
        """The first ``limit`` of ``iter_events(**filters)``; each is cited unless ``cite``
        is false."""
        found = list(islice(self.iter_events(**filters), limit))
        if cite:
            for item in found:
                self.cite(item)
        return found

    def cite(self, item: Event) -> None:
        """Cite an event already read (no query)."""
        if item.index < self.size:
            self._events.setdefault(item.index, item)

    def cite_stream(self, stream: EventStream, *, count: int, first: int, last: int) -> None:
        """Cite the events ``stream`` yields (in index order; ``count`` of them, from
        index ``first`` to ``last``), read again when the evidence is rendered."""
        if count:
            self.streams.append(stream)
            self._streamed.append((count, first, last))

    def indexes_of_entries(self, entry_ids: Iterable[int]) -> dict[int, int]:
        """Leaf index of each ledger entry id that is under the checkpoint (and cite it)."""
        ids = sorted({int(i) for i in entry_ids if i is not None})
        if not ids:
            return {}
        rows = (
            self.session.connection()
            .execute(select(_leaves.c.entry_id, _leaves.c.idx).where(_leaves.c.entry_id.in_(ids)))
            .all()
        )
        out = {int(e): int(i) for e, i in rows if int(i) < self.size}
        for index in out.values():
            self.cite_index(index)
        return out

    def cite_index(self, index: int) -> None:
        if index in self._events or index >= self.size:
            return
        page = ledger_service.list_events(session=self.session, start=index, limit=1)
        if page.items and page.items[0].index == index:
            self._events[index] = page.items[0]

    @property
    def cited(self) -> list[Event]:
        """The events cited one by one (not those cited as a stream), in index order."""
        return [self._events[i] for i in sorted(self._events)]

    @property
    def count(self) -> int:
        """Events cited (an event cited both ways is counted twice: bounds, not exact)."""
        return len(self._events) + sum(c for c, _f, _l in self._streamed)

    def coverage(self) -> dict[str, Any]:
        """The range the report covers: first and last cited ledger index, the
        checkpoint's tree size and the time window."""
        firsts = [f for _c, f, _l in self._streamed]
        lasts = [la for _c, _f, la in self._streamed]
        if self._events:
            firsts.append(min(self._events))
            lasts.append(max(self._events))
        return {
            "tree_size": self.size,
            "first_index": min(firsts) if firsts else None,
            "last_index": max(lasts) if lasts else None,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }

    def to_json(self) -> dict[str, Any]:
        """The report's ``ledger`` object; ``events`` is produced as it is iterated."""
        return {
            "origin": self.checkpoint.origin,
            "tree_size": self.size,
            "root_hash": self.checkpoint.root_hash,
            "checkpoint": self.checkpoint.note,
            "verifier_key": self.checkpoint.verifier_key,
            "range": self.coverage(),
            "events": CitedEvents(self),
        }


def refs(items: Iterable[Event]) -> str:
    """A table cell naming cited events: '#12 #15'."""
    return " ".join(f"#{i.index}" for i in items)
