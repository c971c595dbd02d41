"""Ledger evidence for a report: the signed checkpoint it was built from and an inclusion
proof for every event it cites, in the form ``privet-audit verify-report`` checks offline
(see audit/privet_audit/report.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from privet.ledger import queries as ledger_service
from privet.ledger.tables import LedgerLeaf

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]


class Evidence:
    """Collects cited events (by leaf index) up to one signed checkpoint."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.checkpoint = ledger_service.get_checkpoint(session=session)
        self.size = self.checkpoint.tree_size
        self._events: dict[int, ledger_service.AuditEventPublic] = {}

    def events(
        self,
        *,
        object_id: str | None = None,
        type: str | None = None,
        types: Sequence[str] | None = None,
        project: str | None = None,
        actor: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 1000,
        cite: bool = True,
    ) -> list[ledger_service.AuditEventPublic]:
        """Events under the checkpoint matching the filters (``types``: type prefixes),
        in index order, at most ``limit``; each is cited unless ``cite`` is false."""
        found: list[ledger_service.AuditEventPublic] = []
        start = 0
        while len(found) < limit:
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
            for item in page.items:
                if item.index >= self.size:
                    page.next_start = None
                    break
                if types and not any(item.event["type"].startswith(t) for t in types):
                    continue
                found.append(item)
                if len(found) >= limit:
                    break
            if page.next_start is None:
                break
            start = page.next_start
        if cite:
            for item in found:
                self._events.setdefault(item.index, item)
        return found

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
    def cited(self) -> list[ledger_service.AuditEventPublic]:
        return [self._events[i] for i in sorted(self._events)]

    def to_json(self) -> dict[str, Any]:
        events = []
        for item in self.cited:
            proof = ledger_service.get_inclusion_proof(
                session=self.session, index=item.index, tree_size=self.size
            )
            events.append(
                {
                    "index": item.index,
                    "type": item.event["type"],
                    "time": item.event["time"],
                    "entry": item.entry,
                    "inclusion_proof": proof.hashes,
                }
            )
        return {
            "origin": self.checkpoint.origin,
            "tree_size": self.size,
            "root_hash": self.checkpoint.root_hash,
            "checkpoint": self.checkpoint.note,
            "verifier_key": self.checkpoint.verifier_key,
            "events": events,
        }


def refs(items: Iterable[ledger_service.AuditEventPublic]) -> str:
    """A table cell naming cited events: '#12 #15'."""
    return " ".join(f"#{i.index}" for i in items)
