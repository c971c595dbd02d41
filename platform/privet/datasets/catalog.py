"""Catalogue: looking up datasets and their versions (metadata only, never rows).

Every lookup is scoped so that an id from another project reads as "does not exist".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from privet.datasets.tables import Dataset, DatasetVersion
from privet.db import get_in_project
from privet.kit.errors import NotFoundError
from privet.kit.numbers import ascii_number
from privet.kit.paging import Keyset, Page


def get_dataset(session: Session, *, project_id: str, dataset_id: str) -> Dataset:
    """The dataset, or NotFound (also when it belongs to another project)."""
    return get_in_project(session, Dataset, dataset_id, project_id=project_id, what="dataset")


def list_datasets(session: Session, *, project_id: str) -> Sequence[Dataset]:
    return session.exec(
        select(Dataset).where(Dataset.project_id == project_id).order_by(col(Dataset.created_at))
    ).all()


def list_versions(session: Session, *, dataset_id: str) -> Sequence[DatasetVersion]:
    return session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(col(DatasetVersion.number))
    ).all()


DATASET_ORDER = Keyset(
    columns=(col(Dataset.created_at), col(Dataset.id)), kinds=(datetime, str), descending=True
)
"""Datasets list newest first (a new upload heads the first page); (created_at, id)."""


def datasets_page(
    session: Session, *, project_id: str, after: str | None = None, limit: int = 20
) -> Page[Dataset]:
    """A page of the project's datasets, newest first, from the cursor ``after``."""
    query = select(Dataset).where(Dataset.project_id == project_id)
    rows = session.exec(DATASET_ORDER.page(query, after=after, limit=limit)).all()
    return DATASET_ORDER.split(rows, limit=limit, key=lambda d: (d.created_at, d.id))


def versions_of(session: Session, *, dataset_ids: Sequence[str]) -> dict[str, list[DatasetVersion]]:
    """The versions of each dataset, oldest first: one query for a page of datasets."""
    query = select(DatasetVersion).where(col(DatasetVersion.dataset_id).in_(list(dataset_ids)))
    found: dict[str, list[DatasetVersion]] = {d: [] for d in dataset_ids}
    for version in session.exec(query.order_by(col(DatasetVersion.number))).all():
        found[version.dataset_id].append(version)
    return found


def newest_active(
    session: Session, *, project_id: str, limit: int
) -> list[tuple[Dataset, DatasetVersion]]:
    """The project's ``limit`` newest active dataset versions with their datasets (what a
    training form offers), in one query."""
    rows = session.exec(
        select(Dataset, DatasetVersion)
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id))
        .where(Dataset.project_id == project_id, DatasetVersion.state == "active")
        .order_by(col(DatasetVersion.created_at).desc(), col(DatasetVersion.id).desc())
        .limit(limit)
    ).all()
    return [(d, v) for d, v in rows]


def get_version(session: Session, *, dataset: Dataset, version: str) -> DatasetVersion:
    """A version of the dataset by id or by number."""
    query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    number = ascii_number(version)
    if number is not None:
        query = query.where(DatasetVersion.number == number)
    else:
        query = query.where(DatasetVersion.id == version)
    row = session.exec(query).first()
    if row is None:
        raise NotFoundError(f"dataset {dataset.id!r} has no version {version!r}")
    return row


def get_version_by_id(
    session: Session, *, version_id: str, project_id: str | None = None
) -> DatasetVersion:
    return get_in_project(
        session, DatasetVersion, version_id, project_id=project_id, what="dataset version"
    )
