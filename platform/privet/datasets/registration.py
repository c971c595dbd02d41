"""Registration: a staged version (and its dataset, when new) becomes a record.

Kept apart from the upload so that registering is one short database transaction: the
bytes were already validated and encrypted by ``upload``. Also the dataset-wide privacy
budget rule, since registration is where a version declares its budget.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from privet import ledger
from privet.crypto import DataKey
from privet.datasets.schemas import Declarations, UploadResult
from privet.datasets.split import split_record
from privet.datasets.tables import Dataset, DatasetVersion, VersionState
from privet.datasets.upload import StagedVersion
from privet.kit.errors import ConflictError, InvalidInputError
from privet.kit.ids import new_id, utcnow


class PrivacyBudgetIncreaseError(ConflictError):
    """A new version declared a larger privacy budget than its dataset already has."""

    slug = "privacy-budget-increase"
    title = "A dataset's privacy budget cannot increase"


def _version_row(
    staged: StagedVersion, *, dataset: Dataset, number: int, actor: str, parent: str | None
) -> DatasetVersion:
    decl = staged.declarations
    now = utcnow()
    budget = decl.privacy_budget
    delta = budget.delta if budget.delta is not None else 1.0 / (10 * max(staged.row_count, 1))
    return DatasetVersion(
        id=staged.version_id,
        dataset_id=dataset.id,
        project_id=dataset.project_id,
        number=number,
        format=staged.format,
        digest=staged.digest,
        source_sha256=staged.source_sha256,
        source_bytes=staged.source_bytes,
        row_count=staged.row_count,
        label_counts=staged.label_counts,
        split=split_record(
            staged.label_counts,
            seed=decl.split.seed,
            validation=decl.split.validation,
            test=decl.split.test,
            unlabelled_rows=staged.row_count if decl.unlabelled else None,
        ),
        declarations=decl.model_dump(mode="json"),
        pii_scan=staged.pii_scan,
        epsilon_total=budget.epsilon_total,
        delta=delta,
        state=VersionState.active.value,
        parent_version_id=parent,
        created_by=actor,
        blob_key=staged.blob_key,
        blob_sha256=staged.blob_sha256,
        blob_bytes=staged.blob_bytes,
        data_key_id=staged.data_key_id,
        created_at=now,
        retention_until=now + timedelta(days=decl.retention_days),
    )


def dataset_epsilon_total(session: Session, *, dataset_id: str) -> float | None:
    """The dataset's privacy budget: the smallest total any of its versions declared
    (None before its first version). Every version shares it; see docs/PRIVACY.md."""
    totals = session.exec(
        select(DatasetVersion.epsilon_total).where(DatasetVersion.dataset_id == dataset_id)
    ).all()
    return min(totals) if totals else None


def _check_budget_declaration(
    session: Session, *, dataset: Dataset, declarations: Declarations
) -> None:
    """Refuse a new upload that declares a larger ε total than the dataset has: the people
    in it may be the same people, whose ε was spent on the earlier versions. A smaller
    total is accepted and binds every version from then on."""
    current = dataset_epsilon_total(session, dataset_id=dataset.id)
    declared = declarations.privacy_budget.epsilon_total
    if current is not None and declared > current + 1e-9:
        raise PrivacyBudgetIncreaseError(
            f"dataset {dataset.id} has a privacy budget of ε = {current:g}, shared by all its "
            f"versions; this version declares ε = {declared:g}. A budget can only stay the "
            f"same or decrease: declare privacy_budget.epsilon_total ≤ {current:g}, or upload "
            "the data as a new dataset only if it holds different people",
            dataset_id=dataset.id,
            dataset_epsilon_total=current,
            declared_epsilon_total=declared,
        )


def _create_dataset(
    session: Session,
    *,
    project_id: str,
    name: str | None,
    description: str,
    actor: str,
    now: datetime,
) -> Dataset:
    """A new dataset named `name`; the name is unique in its project."""
    if not name:
        raise InvalidInputError("declare `name`: the file name gives no usable dataset name")
    exists = session.exec(
        select(Dataset.id).where(Dataset.project_id == project_id, Dataset.name == name)
    ).first()
    if exists is not None:
        raise ConflictError(
            f"dataset {name!r} already exists in this project: upload a new version "
            f"with POST /v1/projects/{project_id}/datasets/{exists}/versions",
            dataset_id=exists,
        )
    dataset = Dataset(
        id=new_id("ds"),
        project_id=project_id,
        name=name,
        description=description,
        created_at=now,
        created_by=actor,
        latest_version=0,
    )
    session.add(dataset)
    ledger.emit(
        session,
        type="dataset.created",
        actor=actor,
        project=project_id,
        objects={"dataset": dataset.id},
    )
    return dataset


def _emit_version_created(
    session: Session,
    *,
    staged: StagedVersion,
    version: DatasetVersion,
    project_id: str,
    actor: str,
) -> None:
    """The ledger event: digests, counts and declarations, never a row."""
    decl = staged.declarations
    ledger.emit(
        session,
        type="dataset.version.created",
        actor=actor,
        project=project_id,
        objects={"dataset": version.dataset_id, "dataset_version": version.id},
        digests={"content": version.digest, "source": version.source_sha256},
        details={
            "number": version.number,
            "format": version.format,
            "row_count": version.row_count,
            "label_count": len(version.label_counts),
            "unlabelled": decl.unlabelled,
            "contains_personal_data": decl.contains_personal_data,
            "pii_suspected": staged.pii_suspected,
            "data_categories": list(decl.data_categories),
            "purposes": list(decl.purposes),
            "legal_basis": decl.legal_basis.value,
            "retention_days": decl.retention_days,
            "parent_version": version.parent_version_id,
        },
    )


def register_version(
    session: Session,
    *,
    staged: StagedVersion,
    project_id: str,
    actor: str,
    dataset: Dataset | None = None,
    name: str | None = None,
    description: str = "",
    parent_version_id: str | None = None,
) -> DatasetVersion:
    """Record a staged version (and its dataset, when new) with its data key and events.

    Runs in the caller's transaction; the caller must ``staged.discard(store)`` if this
    raises or the transaction does not commit. A new upload (no parent) of an existing
    dataset may not declare a larger privacy budget than the dataset has
    (PrivacyBudgetIncreaseError); a version derived by erasure copies its parent's.
    """
    if staged.project_id != project_id:
        raise InvalidInputError("staged version belongs to another project")
    now = utcnow()
    if dataset is None:
        dataset = _create_dataset(
            session,
            project_id=project_id,
            name=name,
            description=description,
            actor=actor,
            now=now,
        )
    elif parent_version_id is None:
        _check_budget_declaration(session, dataset=dataset, declarations=staged.declarations)
    number = dataset.latest_version + 1
    dataset.latest_version = number
    session.add(dataset)
    session.add(
        DataKey(
            id=staged.data_key_id,
            object_kind=staged.ref.kind,
            object_id=staged.ref.object_id,
            project_id=staged.ref.project_id,
            wrapped_key=staged.wrapped_key,
            kek_id=staged.kek_id,
            kek_version=staged.kek_version,
            created_at=now,
        )
    )
    version = _version_row(
        staged, dataset=dataset, number=number, actor=actor, parent=parent_version_id
    )
    session.add(version)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            "another version or dataset was registered at the same moment: retry",
        ) from None
    _emit_version_created(
        session, staged=staged, version=version, project_id=project_id, actor=actor
    )
    return version


def upload_result(
    version: DatasetVersion, *, dataset_name: str, warnings: list[str]
) -> UploadResult:
    return UploadResult.model_validate(
        {**version.model_dump(), "dataset_name": dataset_name, "warnings": warnings}
    )
