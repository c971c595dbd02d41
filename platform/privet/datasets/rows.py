"""Rows: a version's rows decrypted in memory for training and export, with its split.

Reading checks the content digest and recomputes the recorded split, so training never
uses rows that differ from what was registered. A shredded version reads as 410 Gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from privet import ledger
from privet.crypto import (
    BlobStore,
    DataKey,
    KeyProvider,
    ObjectRef,
    data_keys_of,
    decrypt_object,
    unwrap_data_key,
    unwrap_key_row,
)
from privet.crypto.errors import DataKeyDestroyedError
from privet.datasets.catalog import get_version_by_id
from privet.datasets.ingest import decode_rows
from privet.datasets.split import NO_LABEL, assign
from privet.datasets.tables import OBJECT_KIND, DatasetVersion, VersionState
from privet.kit.errors import ConflictError, PrivetError


class DatasetVersionShreddedError(PrivetError):
    """The version's data key was destroyed (erasure or retention): its rows are gone."""

    status = 410
    slug = "dataset-version-shredded"
    title = "Dataset version shredded"


def version_ref(version: DatasetVersion) -> ObjectRef:
    """The version's object reference: what its blob and data key are filed under."""
    return ObjectRef(OBJECT_KIND, version.id, version.project_id)


def version_keys(session: Session, versions: Sequence[DatasetVersion]) -> dict[ObjectRef, DataKey]:
    """The data-key rows of many versions, read together (``iter_version_rows(keys=)``)."""
    return data_keys_of(session, refs=[version_ref(v) for v in versions])


def iter_version_rows(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    version: DatasetVersion,
    keys: Mapping[ObjectRef, DataKey] | None = None,
) -> Iterator[tuple[str, str | None, str | None]]:
    """(text, label, subject_id) of each row, decrypted in memory, streaming (label None:
    an unlabelled version). ``keys``: the data keys `version_keys` read for a batch of
    versions (none: this version's is read now).

    The content digest is checked at the end: a mismatch raises after the last row, so a
    consumer must treat an exception as the failure of the whole read.
    """
    if version.state != VersionState.active.value:
        raise DatasetVersionShreddedError(
            f"dataset version {version.id} was shredded ({version.shred_reason}) at "
            f"{version.shredded_at.isoformat() if version.shredded_at else 'unknown time'}",
            dataset_version_id=version.id,
        )
    ref = version_ref(version)
    try:
        if keys is None:
            handle = unwrap_data_key(session=session, provider=provider, ref=ref)
        else:
            handle = unwrap_key_row(provider=provider, ref=ref, row=keys.get(ref))
        chunks = decrypt_object(handle=handle, store=store)
    except DataKeyDestroyedError as exc:
        raise DatasetVersionShreddedError(exc.detail, dataset_version_id=version.id) from None
    digest = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for chunk in chunks:
            digest.update(chunk)
            yield chunk

    yield from decode_rows(hashed())
    if "sha256:" + digest.hexdigest() != version.digest:
        raise ConflictError(
            f"dataset version {version.id} does not match its recorded digest",
            dataset_version_id=version.id,
        )


@dataclass(frozen=True)
class VersionRows:
    """A version's rows decrypted in memory, with their recorded split.

    ``label_names`` are the distinct labels sorted; a label's class index is its position.
    An unlabelled version has none: each of its rows' labels is ``NO_LABEL``.
    """

    version_id: str
    dataset_id: str
    project_id: str
    digest: str
    texts: list[str]
    labels: list[str]
    subject_ids: list[str | None]
    splits: list[str]
    label_names: list[str]
    declarations: dict[str, Any]
    epsilon_total: float
    delta: float
    unlabelled: bool = False

    def __len__(self) -> int:
        return len(self.texts)

    def indices(self, split: str) -> list[int]:
        """Row positions of 'train', 'validation' or 'test'."""
        return [i for i, s in enumerate(self.splits) if s == split]

    def label_ids(self) -> list[int]:
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[label] for label in self.labels]


def record_export(session: Session, *, version: DatasetVersion, actor: str) -> None:
    """Ledger a raw-rows export of a version (digest and count only, never the rows)."""
    if version.state != VersionState.active.value:
        raise DatasetVersionShreddedError(
            f"dataset version {version.id} was shredded ({version.shred_reason}); "
            "there is nothing to export",
            dataset_version_id=version.id,
        )
    ledger.emit(
        session,
        type="dataset.version.exported",
        actor=actor,
        project=version.project_id,
        objects={"dataset": version.dataset_id, "dataset_version": version.id},
        digests={"content": version.digest},
        details={"rows": version.row_count, "format": "jsonl"},
    )


def export_lines(
    session: Session, *, provider: KeyProvider, store: BlobStore, version: DatasetVersion
) -> Iterator[bytes]:
    """The version's rows as JSON Lines (text, label, subject_id), decrypted as they stream."""
    for text, label, subject_id in iter_version_rows(
        session, provider=provider, store=store, version=version
    ):
        row = {"text": text, "label": label, "subject_id": subject_id}
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


def load_version_rows(
    session: Session,
    *,
    provider: KeyProvider,
    store: BlobStore,
    version_id: str,
    project_id: str | None = None,
) -> VersionRows:
    """Everything training needs from a version, decrypted in memory (never on disk).

    Raises NotFoundError (unknown version, or not in `project_id`),
    DatasetVersionShreddedError (410: erased or past retention) and ConflictError (the
    content does not match its digest). The split is recomputed from the recorded seed and
    fractions and checked against the recorded counts.
    """
    version = get_version_by_id(session, version_id=version_id, project_id=project_id)
    texts: list[str] = []
    labels: list[str] = []
    subjects: list[str | None] = []
    for text, label, subject in iter_version_rows(
        session, provider=provider, store=store, version=version
    ):
        texts.append(text)
        labels.append(NO_LABEL if label is None else label)
        subjects.append(subject)
    rec = version.split
    splits = assign(
        labels,
        seed=int(rec["seed"]),
        validation=float(rec["fractions"]["validation"]),
        test=float(rec["fractions"]["test"]),
    )
    counts = {s: splits.count(s) for s in ("train", "validation", "test")}
    if counts != rec["counts"]:
        raise ConflictError(
            f"dataset version {version.id}: recomputed split {counts} differs from the "
            f"recorded {rec['counts']}"
        )
    return VersionRows(
        version_id=version.id,
        dataset_id=version.dataset_id,
        project_id=version.project_id,
        digest=version.digest,
        texts=texts,
        labels=labels,
        subject_ids=subjects,
        splits=splits,
        label_names=sorted(version.label_counts),
        declarations=dict(version.declarations),
        epsilon_total=version.epsilon_total,
        delta=version.delta,
        unlabelled=bool(version.declarations.get("unlabelled")),
    )
