"""Signing checkpoints: when one is due, and never one inconsistent with the last.

A sequencer pass asks after integrating; a checkpoint is due every ``checkpoint_every``
leaves or ``checkpoint_interval_s`` seconds (or when forced), and is signed only after
a consistency proof from the latest stored checkpoint to the new tree verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from privet.ledger.integrate import Integrated, LedgerIntegrityError, TreeStorage
from privet.ledger.settings import LedgerSettings
from privet_audit.checkpoint import Checkpoint, NoteError, Signer, open_checkpoint, sign_checkpoint
from privet_audit.merkle import EMPTY_ROOT, ConsistencyError, consistency_proof, verify_consistency

__all__ = ["CheckpointStorage", "Checkpointer", "LatestCheckpoint", "SigningLog"]


class CheckpointStorage(TreeStorage, Protocol):
    """A tree storage that also keeps the signed checkpoints."""

    def latest_checkpoint(self) -> tuple[int, str, datetime] | None:
        """(size, note, created at) of the largest checkpoint, if any."""
        ...

    def write_checkpoint(self, size: int, root: bytes, note: str, at: datetime) -> None: ...


class SigningLog(Protocol):
    """The log whose checkpoints are signed: its origin, key and settings."""

    @property
    def origin(self) -> str: ...

    @property
    def signer(self) -> Signer: ...

    @property
    def ledger_settings(self) -> LedgerSettings: ...


@dataclass(frozen=True)
class LatestCheckpoint:
    """The latest signed checkpoint, verified; ``note`` None: none yet (size 0)."""

    size: int
    root: bytes
    at: datetime
    note: str | None


_NONE_YET = LatestCheckpoint(0, EMPTY_ROOT, datetime.fromtimestamp(0, UTC), None)


class Checkpointer:
    """Signs ``log``'s checkpoints; remembers the last one between passes."""

    def __init__(self, log: SigningLog) -> None:
        self.log = log
        self._last: LatestCheckpoint | None = None

    def forget(self) -> None:
        """Drop what is remembered (a pass failed: its transaction rolled back)."""
        self._last = None

    def latest(self, storage: CheckpointStorage) -> LatestCheckpoint:
        """The latest stored checkpoint, which must verify with the log's own key."""
        row = storage.latest_checkpoint()
        if row is None:
            return _NONE_YET
        size, note, created = row
        try:
            cp = open_checkpoint(note, self.log.signer.verifier, origin=self.log.origin)
        except NoteError as exc:
            raise LedgerIntegrityError(
                f"the latest stored checkpoint (size {size}) does not verify: {exc}"
            ) from exc
        if cp.size != size:
            raise LedgerIntegrityError(
                f"checkpoint row says size {size} but its note says {cp.size}"
            )
        at = created if created.tzinfo else created.replace(tzinfo=UTC)
        return LatestCheckpoint(cp.size, cp.root, at, note)

    def _due(self, size: int, last: LatestCheckpoint, now: datetime, force: bool) -> bool:
        ls = self.log.ledger_settings
        return (
            force
            or size - last.size >= ls.checkpoint_every
            or (now - last.at).total_seconds() >= ls.checkpoint_interval_s
        )

    def maybe_sign(
        self, storage: CheckpointStorage, tree: Integrated, now: datetime, force: bool
    ) -> tuple[int, str] | None:
        """Sign a checkpoint of ``tree`` if one is due; (size, note) of the one signed."""
        if force and tree.size == 0 and self.latest(storage).note is None:
            # An empty log still gets a signed (size 0) checkpoint on request, so an
            # auditor can hold the log to it from the start.
            return self._sign(storage, tree, now)
        if self._last is None:
            self._last = self.latest(storage)
        if tree.size <= self._last.size:
            if tree.size < self._last.size:
                raise LedgerIntegrityError(
                    f"the tree has {tree.size} leaves but a checkpoint of size "
                    f"{self._last.size} exists: the log was truncated or rolled back"
                )
            return None
        if not self._due(tree.size, self._last, now, force):
            return None
        # Re-read the previous checkpoint from the database (another process may have
        # signed one since we cached it) and never sign anything inconsistent with it.
        last = self._last = self.latest(storage)
        if tree.size <= last.size or not self._due(tree.size, last, now, force):
            return None  # another process signed one meanwhile: not due any more
        proof = consistency_proof(last.size, tree.size, tree.reader(storage))
        try:
            verify_consistency(last.size, tree.size, proof, last.root, tree.root)
        except ConsistencyError as exc:
            raise LedgerIntegrityError(
                f"refusing to sign size {tree.size}: not consistent with the checkpoint of "
                f"size {last.size}: {exc}"
            ) from exc
        return self._sign(storage, tree, now)

    def _sign(self, storage: CheckpointStorage, tree: Integrated, now: datetime) -> tuple[int, str]:
        note = sign_checkpoint(Checkpoint(self.log.origin, tree.size, tree.root), self.log.signer)
        storage.write_checkpoint(tree.size, tree.root, note, now)
        self._last = LatestCheckpoint(tree.size, tree.root, now, note)
        return tree.size, note
