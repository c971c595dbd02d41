"""Erasure: removing data subjects from a dataset (GDPR Art. 17).

The latest version is rewritten without the subjects' rows and every version that held
them is crypto-shredded; earlier versions cannot be rewritten (they are immutable and may
be the lineage of a model), so shredding is what erases them. The ledger names subjects
only by their pseudonyms.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlmodel import Session

from privet import ledger
from privet.config import Settings
from privet.crypto import BlobStore, KeyProvider
from privet.datasets.catalog import list_datasets, list_versions
from privet.datasets.items import Row
from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
from privet.datasets.registration import register_version
from privet.datasets.rows import iter_version_rows
from privet.datasets.schemas import AffectedUsage, DatasetVersionPublic, Declarations, ErasureResult
from privet.datasets.shredding import shred_version
from privet.datasets.tables import Dataset, DatasetVersion, VersionState
from privet.datasets.upload import StagedVersion, stage_rows
from privet.kit.errors import InvalidInputError


def _active_versions(session: Session, *, dataset_id: str) -> list[DatasetVersion]:
    return [
        v for v in list_versions(session, dataset_id=dataset_id) if v.state == VersionState.active
    ]


def _earlier_holding(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    versions: Sequence[DatasetVersion],
    wanted: set[str],
) -> tuple[list[DatasetVersion], set[str]]:
    """The versions that hold any of the subjects, and which subjects they hold."""
    holding: list[DatasetVersion] = []
    found: set[str] = set()
    for version in versions:
        hit = False
        for _text, _label, subject in iter_version_rows(
            session, provider=provider, store=store, version=version
        ):
            if subject in wanted:
                hit = True
                found.add(subject)
        if hit:
            holding.append(version)
    return holding, found


def _rewrite_without(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    dataset: Dataset,
    latest: DatasetVersion,
    wanted: set[str],
) -> tuple[StagedVersion | None, int, set[str]]:
    """Stage a copy of `latest` without the subjects' rows: (the copy, rows removed,
    subjects found), or (None, 0, empty) when it held none of them."""
    removed = 0
    seen: set[str] = set()

    def kept() -> Iterator[Row]:
        nonlocal removed
        for i, (text, label, subject) in enumerate(
            iter_version_rows(session, provider=provider, store=store, version=latest),
            start=1,
        ):
            if subject in wanted:
                removed += 1
                seen.add(subject)
                continue
            yield (i, text, label, subject)

    candidate = stage_rows(
        provider=provider,
        store=store,
        project_id=dataset.project_id,
        declarations=Declarations.model_validate(latest.declarations),
        fmt=latest.format,
        rows=kept(),
        check_minimums=False,
    )
    if not removed:
        candidate.discard(store)
        return None, 0, set()
    return candidate, removed, seen


def _register_and_shred(
    session: Session,
    *,
    store: BlobStore,
    dataset: Dataset,
    staged: StagedVersion | None,
    parent: DatasetVersion | None,
    holding: Sequence[DatasetVersion],
    actor: str,
) -> tuple[DatasetVersion | None, list[AffectedUsage]]:
    """Register the rewritten version, then shred every holding version; the staged blob
    is discarded if any of it fails."""
    new_version: DatasetVersion | None = None
    try:
        if staged is not None and parent is not None:
            new_version = register_version(
                session,
                staged=staged,
                project_id=dataset.project_id,
                actor=actor,
                dataset=dataset,
                parent_version_id=parent.id,
            )
        affected: list[AffectedUsage] = []
        for version in holding:
            affected.extend(
                shred_version(session, store=store, version=version, reason="erasure", actor=actor)
            )
    except BaseException:
        if staged is not None:
            staged.discard(store)
        raise
    return new_version, affected


def erase_subjects(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    settings: Settings,
    dataset: Dataset,
    subject_ids: Sequence[str],
    actor: str,
) -> ErasureResult:
    """Erase data subjects from a dataset.

    Every active version is read; if the latest one holds any of the subjects a new version
    without their rows is written (same declarations, split recomputed), and every version
    that held any of them is crypto-shredded. The model versions etc. recorded as using a
    shredded version are returned as affected. The ledger event names subjects only by
    their pseudonyms. Idempotent: erasing absent subjects changes nothing but is recorded.
    """
    wanted = set(subject_ids)
    key = pseudonymisation_key(settings)
    pseudonyms = sorted({pseudonymise(key, s) for s in wanted})
    versions = _active_versions(session, dataset_id=dataset.id)
    latest = max(versions, key=lambda v: v.number) if versions else None
    if latest is not None and not latest.declarations.get("subject_id_column"):
        raise InvalidInputError(
            f"dataset {dataset.id} declares no subject-id column, so rows cannot be matched "
            "to data subjects"
        )
    holding, found = _earlier_holding(
        session,
        provider=provider,
        store=store,
        versions=[v for v in versions if v is not latest],
        wanted=wanted,
    )
    staged: StagedVersion | None = None
    rows_removed = 0
    if latest is not None:
        staged, rows_removed, seen = _rewrite_without(
            session, provider=provider, store=store, dataset=dataset, latest=latest, wanted=wanted
        )
        if staged is not None:
            found |= seen
            holding.append(latest)
    new_version, affected = _register_and_shred(
        session,
        store=store,
        dataset=dataset,
        staged=staged,
        parent=latest,
        holding=holding,
        actor=actor,
    )
    result = ErasureResult(
        dataset_id=dataset.id,
        subjects=pseudonyms,
        subjects_found=len(found),
        rows_removed=rows_removed,
        new_version=DatasetVersionPublic.model_validate(new_version) if new_version else None,
        shredded_versions=[v.id for v in holding],
        affected=affected,
    )
    _emit_erased(session, result=result, project_id=dataset.project_id, actor=actor)
    return result


def _emit_erased(session: Session, *, result: ErasureResult, project_id: str, actor: str) -> None:
    """The ledger event: pseudonyms, counts and ids, never a subject id."""
    new_version = result.new_version
    ledger.emit(
        session,
        type="dataset.subjects.erased",
        actor=actor,
        project=project_id,
        objects={"dataset": result.dataset_id}
        | ({"dataset_version": new_version.id} if new_version else {}),
        details={
            "subjects": result.subjects,
            "subjects_found": result.subjects_found,
            "rows_removed": result.rows_removed,
            "shredded_versions": result.shredded_versions,
            "affected": [f"{a.used_by_kind}/{a.used_by_id}" for a in result.affected][:100],
            "affected_count": len(result.affected),
        },
    )


def erase_subjects_in_project(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    settings: Settings,
    project_id: str,
    subject_ids: Sequence[str],
    actor: str,
) -> list[ErasureResult]:
    """``erase_subjects`` on every dataset of a project that declares a subject-id column
    (what a platform-wide data-subject erasure request runs per project)."""
    results: list[ErasureResult] = []
    for dataset in list_datasets(session, project_id=project_id):
        active = _active_versions(session, dataset_id=dataset.id)
        if active and max(active, key=lambda v: v.number).declarations.get("subject_id_column"):
            results.append(
                erase_subjects(
                    session,
                    provider=provider,
                    store=store,
                    settings=settings,
                    dataset=dataset,
                    subject_ids=subject_ids,
                    actor=actor,
                )
            )
    return results
