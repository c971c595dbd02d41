"""Shredding: crypto-shredding one dataset version, shared by erasure and retention.

Destroying the data key is what erases the rows (every copy of the blob, backups included,
becomes unreadable); deleting the blob afterwards only frees space.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import event as sa_event
from sqlmodel import Session

from privet import ledger
from privet.crypto import BlobStore, shred
from privet.datasets.rows import version_ref
from privet.datasets.schemas import AffectedUsage
from privet.datasets.tables import DatasetVersion, VersionState
from privet.datasets.usage import usages_of
from privet.kit.ids import utcnow


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    def run(_session: Any) -> None:
        with contextlib.suppress(Exception):  # deletion only frees space; orphans are swept
            action()

    sa_event.listen(session, "after_commit", run, once=True)


def shred_version(
    session: Session, *, store: BlobStore, version: DatasetVersion, reason: str, actor: str
) -> list[AffectedUsage]:
    """Destroy a version's data key (crypto-shredding) and mark it; the blob is deleted
    after the transaction commits. Emits ``dataset.version.shredded``."""
    shred(session=session, ref=version_ref(version))
    version.state = VersionState.shredded.value
    version.shredded_at = utcnow()
    version.shred_reason = reason
    session.add(version)
    session.flush()
    affected = usages_of(session, dataset_version_ids=[version.id])
    ledger.emit(
        session,
        type="dataset.version.shredded",
        actor=actor,
        project=version.project_id,
        objects={"dataset": version.dataset_id, "dataset_version": version.id},
        digests={"content": version.digest},
        details={
            "reason": reason,
            "affected": [f"{a.used_by_kind}/{a.used_by_id}" for a in affected][:100],
            "affected_count": len(affected),
        },
    )
    key = version.blob_key

    def delete_blob() -> None:
        store.delete(key)

    _after_commit(session, delete_blob)
    return affected
