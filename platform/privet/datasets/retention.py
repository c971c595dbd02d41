"""Retention: shredding versions past their retention date, and orphan blobs.

Run by ``privet datasets sweep`` (cron) or the API; each shredded version is one ledger
event, like an erasure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from privet.crypto import BlobStore
from privet.datasets.schemas import AffectedUsage, SweepResult
from privet.datasets.shredding import shred_version
from privet.datasets.tables import OBJECT_KIND, DatasetVersion, VersionState
from privet.kit.ids import utcnow

SYSTEM_ACTOR = "system:datasets"


def _blob_age(store: BlobStore, key: str) -> float | None:
    root = getattr(store, "root", None)
    if root is None:
        return None
    try:
        return utcnow().timestamp() - Path(root, *key.split("/")).stat().st_mtime
    except OSError:
        return None


def clean_orphan_blobs(session: Session, *, store: BlobStore, min_age_s: float = 300) -> int:
    """Delete dataset blobs with no registered, active version (a crash between storing
    and registering, or a shredded version whose blob deletion did not run)."""
    removed = 0
    for key in list(store.list("")):
        parts = key.split("/")
        if len(parts) != 4 or parts[1] != OBJECT_KIND:
            continue
        version = session.get(DatasetVersion, parts[2])
        if version is not None and version.state == VersionState.active:
            continue
        age = _blob_age(store, key)
        if version is None and age is not None and age < min_age_s:
            continue  # may be an upload registering right now
        if store.delete(key):
            removed += 1
    return removed


def sweep_retention(
    session: Session,
    *,
    store: BlobStore,
    actor: str = SYSTEM_ACTOR,
    project_id: str | None = None,
    now: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Crypto-shred every active version past its retention date (one event each)."""
    orphans = clean_orphan_blobs(session, store=store)
    query = select(DatasetVersion).where(
        DatasetVersion.state == VersionState.active.value,
        col(DatasetVersion.retention_until) <= (now or utcnow()),
    )
    if project_id is not None:
        query = query.where(DatasetVersion.project_id == project_id)
    due = session.exec(query.order_by(col(DatasetVersion.retention_until))).all()
    affected: list[AffectedUsage] = []
    for done, version in enumerate(due, start=1):
        affected.extend(
            shred_version(session, store=store, version=version, reason="retention", actor=actor)
        )
        if progress is not None:
            progress(done, len(due))
    return SweepResult(
        shredded_versions=[v.id for v in due], affected=affected, orphan_blobs_removed=orphans
    )
