"""Verify the ledger evidence inside a compliance report.

A report (JSON) cites ledger events under ``ledger``::

    {"ledger": {"checkpoint": "<signed note>", "verifier_key": "<vkey>",
                "events": [{"index": 17, "entry": "<canonical event JSON>",
                            "inclusion_proof": ["<hex>", ...]}]}}

Each cited entry is proved to be in the log under the signed checkpoint, so a reader
can trust that the events a report relies on were logged, and not written afterwards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privet_audit.canonical import CanonicalError, parse_canonical
from privet_audit.checkpoint import Checkpoint, NoteError, Verifier, open_checkpoint
from privet_audit.merkle import InclusionError, leaf_hash, verify_inclusion

__all__ = ["ReportResult", "verify_report"]


@dataclass
class ReportResult:
    """Outcome of ``verify_report``: ``ok`` plus a one-line ``message``."""

    ok: bool
    message: str
    origin: str = ""
    tree_size: int = 0
    events_verified: int = 0
    key_source: str = ""
    bad_event: int | None = None  # position in ledger.events
    bad_index: int | None = None  # ledger index of that event


def _load(report: Mapping[str, Any] | str | os.PathLike[str]) -> Mapping[str, Any]:
    if isinstance(report, Mapping):
        return report
    data = json.loads(Path(report).read_text("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("report is not a JSON object")
    return data


def _event_error(pos: int, ev: Any, cp: Checkpoint, *, require_canonical: bool) -> str | None:
    """Why ``ledger.events[pos]`` is not proved to be in the log at ``cp`` (None: it is)."""
    index = ev.get("index") if isinstance(ev, Mapping) else None
    if not isinstance(ev, Mapping) or not isinstance(index, int) or isinstance(index, bool):
        return f"ledger.events[{pos}]: needs an integer index"
    entry, proof_hex = ev.get("entry"), ev.get("inclusion_proof")
    if not isinstance(entry, str) or not isinstance(proof_hex, list):
        return f"ledger.events[{pos}] (index {index}): needs entry and inclusion_proof"
    raw = entry.encode("utf-8")
    if require_canonical:
        try:
            parse_canonical(raw)
        except CanonicalError as exc:
            return f"ledger.events[{pos}] (index {index}): entry {exc}"
    try:
        proof = [bytes.fromhex(h) for h in proof_hex]
        verify_inclusion(leaf_hash(raw), index, cp.size, proof, cp.root)
    except (TypeError, ValueError) as exc:
        # InclusionError is a ValueError; keep its precise message.
        why = str(exc) if isinstance(exc, InclusionError) else f"bad proof encoding: {exc}"
        return f"ledger.events[{pos}] (index {index}) is not in the log at size {cp.size}: {why}"
    return None


def verify_report(
    report: Mapping[str, Any] | str | os.PathLike[str],
    key: str | Verifier | None = None,
    *,
    require_canonical: bool = True,
) -> ReportResult:
    """Check the report's checkpoint signature and every cited event's inclusion proof.

    ``key`` pins the log's verifier key; without it the report's own ``verifier_key``
    is used, which only shows the report is self-consistent.
    """
    result = ReportResult(ok=False, message="")
    try:
        doc = _load(report)
    except (OSError, ValueError) as exc:
        result.message = f"cannot read report: {exc}"
        return result
    ledger = doc.get("ledger")
    if not isinstance(ledger, Mapping):
        result.message = "report has no 'ledger' object"
        return result
    try:
        if key is None:
            vkey = ledger.get("verifier_key")
            if not isinstance(vkey, str):
                result.message = "report has no ledger.verifier_key and no --key was given"
                return result
            verifier, result.key_source = Verifier.parse(vkey), "report"
        else:
            verifier = key if isinstance(key, Verifier) else Verifier.parse(key.strip())
            result.key_source = "pinned"
        note = ledger.get("checkpoint")
        if not isinstance(note, str):
            result.message = "report has no ledger.checkpoint"
            return result
        cp = open_checkpoint(note, verifier)
    except NoteError as exc:
        result.message = f"ledger checkpoint: {exc}"
        return result
    result.origin, result.tree_size = cp.origin, cp.size
    events = ledger.get("events")
    if not isinstance(events, list):
        result.message = "report has no ledger.events list"
        return result
    for pos, ev in enumerate(events):
        index = ev.get("index") if isinstance(ev, Mapping) else None
        result.bad_event, result.bad_index = pos, index if isinstance(index, int) else None
        error = _event_error(pos, ev, cp, require_canonical=require_canonical)
        if error is not None:
            result.message = error
            return result
        result.events_verified += 1
    result.bad_event = result.bad_index = None
    result.ok = True
    result.message = (
        f"OK: {result.events_verified} cited events are in {cp.origin} at size {cp.size} "
        f"(checkpoint signature verified, key {result.key_source})"
    )
    return result
