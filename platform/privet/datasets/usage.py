"""Usage: which artifacts (model versions, ...) were derived from which dataset versions.

The jobs layer writes it; erasure and retention read it to name what a shredded version
affects.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from privet.datasets.schemas import AffectedUsage
from privet.datasets.tables import DatasetVersion, DatasetVersionUsage, VersionState
from privet.kit.errors import NotFoundError
from privet.kit.ids import utcnow


def record_usage(
    session: Session, *, dataset_version_id: str, used_by_kind: str, used_by_id: str
) -> DatasetVersionUsage:
    """Record that an artifact (e.g. ``model_version`` X) was derived from a version.

    Idempotent; joins the caller's transaction. Erasure and retention report from it.
    """
    existing = session.get(DatasetVersionUsage, (dataset_version_id, used_by_kind, used_by_id))
    if existing is not None:
        return existing
    if session.get(DatasetVersion, dataset_version_id) is None:
        raise NotFoundError(f"dataset version {dataset_version_id!r} does not exist")
    row = DatasetVersionUsage(
        dataset_version_id=dataset_version_id,
        used_by_kind=used_by_kind,
        used_by_id=used_by_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def lock_erased(session: Session, *, dataset_version_id: str) -> bool:
    """Lock the version's row (``FOR UPDATE``) and say whether an erasure shredded it.

    A worker registering a model calls this in the registration's transaction: an erasure
    shreds the version (an UPDATE of this row) before it reads the version's usages, so
    either the erasure committed first and this sees it, or it waits for the registration
    to commit and then finds the model version among the affected."""
    version = session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.id == dataset_version_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if version is None:
        raise NotFoundError(f"dataset version {dataset_version_id!r} does not exist")
    return version.state == VersionState.shredded.value and version.shred_reason == "erasure"


def usages_of(session: Session, *, dataset_version_ids: Sequence[str]) -> list[AffectedUsage]:
    if not dataset_version_ids:
        return []
    rows = session.exec(
        select(DatasetVersionUsage)
        .where(col(DatasetVersionUsage.dataset_version_id).in_(list(dataset_version_ids)))
        .order_by(col(DatasetVersionUsage.used_by_kind), col(DatasetVersionUsage.used_by_id))
    ).all()
    return [
        AffectedUsage(
            dataset_version_id=r.dataset_version_id,
            used_by_kind=r.used_by_kind,
            used_by_id=r.used_by_id,
        )
        for r in rows
    ]
