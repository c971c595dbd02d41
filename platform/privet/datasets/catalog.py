"""Catalogue: looking up datasets and their versions (metadata only, never rows).

Every lookup is scoped so that an id from another project reads as "does not exist".
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from privet.datasets.tables import Dataset, DatasetVersion
from privet.db import get_in_project
from privet.kit.errors import NotFoundError
from privet.kit.numbers import ascii_number


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
