"""Exporting the ledger as a privet-audit bundle (GET /v1/audit/export, `privet audit
export`): every event up to the latest checkpoint, every checkpoint and the verifier
key, for an auditor to check offline with `privet-audit verify`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import Connection, select
from sqlmodel import Session

from privet.kit.errors import NotFoundError
from privet.ledger.reader import Progress, bulk_reader, iter_leaf_entries
from privet.ledger.sequencer import Ledger, session_ledger
from privet.ledger.storage import node_reader
from privet.ledger.tables import LedgerCheckpoint
from privet_audit.bundle import write_bundle
from privet_audit.checkpoint import open_checkpoint

__all__ = ["ExportResult", "export_bundle"]

_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]


class ExportResult(BaseModel):
    path: str
    tree_size: int
    checkpoints: int
    bytes: int
    verifier_key: str


def export_bundle(*, session: Session, out: Path, progress: Progress | None = None) -> ExportResult:
    """Write a privet-audit bundle of every event up to the latest checkpoint, all
    checkpoints and the verifier key to ``out`` (atomically). Call ``integrate_now``
    first to include everything committed so far."""
    ledger = session_ledger(session)
    with bulk_reader(session) as conn:
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
        for expected, (idx, _eid, _lh, event) in enumerate(iter_leaf_entries(conn, size, progress)):
            if idx != expected or event is None:
                raise RuntimeError(f"ledger damaged at index {expected}: run `privet audit verify`")
            yield event

    write_bundle(
        out,
        verifier_key=ledger.verifier,
        checkpoints=notes,
        entries=entries(),
        node=node_reader(conn),
    )
    return ExportResult(
        path=str(out),
        tree_size=size,
        checkpoints=len(notes),
        bytes=out.stat().st_size,
        verifier_key=str(ledger.verifier),
    )
