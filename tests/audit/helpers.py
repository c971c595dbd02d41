"""Helpers for the privet_audit tests: deterministic events and small signed logs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from privet_audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from privet_audit.events import make_event
from privet_audit.merkle import MemoryTree

ORIGIN = "privet.test/log"


def event_bytes(i: int) -> bytes:
    """A deterministic, schema-valid event for ledger index ``i``."""
    return make_event(
        type="prediction.made" if i % 3 else "auth.decision",
        outcome="allow" if i % 3 == 0 else "ok",
        actor=f"prn_{i % 7:04d}",
        project="prj_0001",
        objects={"model_version": f"mv_{i % 5}"},
        digests={"input": "hmac-sha256:" + f"{i:064x}"},
        details={"policy_ids": ["p1", "p2"], "label": i % 2, "cached": False},
        time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=i),
    )


@dataclass
class Log:
    """A small signed log: entries, the tree, and checkpoints every ``every`` entries."""

    signer: Signer
    entries: list[bytes]
    tree: MemoryTree
    notes: list[str]

    @property
    def vkey(self) -> str:
        return str(self.signer.verifier)

    def checkpoint(self, size: int, signer: Signer | None = None) -> str:
        cp = Checkpoint(ORIGIN, size, self.tree.root(size))
        return sign_checkpoint(cp, signer or self.signer)


def build_log(signer: Signer, n: int, every: int) -> Log:
    entries = [event_bytes(i) for i in range(n)]
    tree = MemoryTree.from_entries(entries)
    sizes = sorted({*range(every, n + 1, every), n})
    notes = [sign_checkpoint(Checkpoint(ORIGIN, s, tree.root(s)), signer) for s in sizes]
    return Log(signer, entries, tree, notes)
