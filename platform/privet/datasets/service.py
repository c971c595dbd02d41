"""Dataset services: streaming upload, versions, reading rows for training, erasure,
retention. No web framework here: the gateway and the workers call these functions.

An upload is three steps, so that no database transaction is open while bytes arrive:
``open_upload`` reads the declarations part, ``Upload.stage`` streams the file through
parse → validate → canonicalise → digest → encrypt into the blob store (nothing is
registered; on any failure nothing remains), and ``register_version`` records the
version in the caller's (short) transaction. See docs/DATASETS.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from privet import ledger
from privet.config import Settings
from privet.crypto import (
    BlobStore,
    DataKey,
    KeyProvider,
    ObjectRef,
    blob_key,
    encrypt_stream,
    read_object,
    shred,
)
from privet.crypto.errors import DataKeyDestroyedError
from privet.datasets import formats, spool
from privet.datasets.formats import Row
from privet.datasets.ingest import Ingest, SourceCounter, decode_rows
from privet.datasets.multipart import MultipartReader, Part, boundary_of
from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
from privet.datasets.split import assign, split_record
from privet.datasets.tables import (
    OBJECT_KIND,
    AffectedUsage,
    DataFormat,
    Dataset,
    DatasetVersion,
    DatasetVersionPublic,
    DatasetVersionUsage,
    Declarations,
    ErasureResult,
    SweepResult,
    UploadDeclarations,
    UploadResult,
    VersionState,
)
from privet.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PrivetError,
    UnsupportedMediaTypeError,
)
from privet.kit.ids import new_id, utcnow
from privet.kit.numbers import ascii_number

MAX_DECLARATIONS_BYTES = 64 * 1024
SYSTEM_ACTOR = "system:datasets"


class DatasetVersionShreddedError(PrivetError):
    """The version's data key was destroyed (erasure or retention): its rows are gone."""

    status = 410
    slug = "dataset-version-shredded"
    title = "Dataset version shredded"


class PrivacyBudgetIncreaseError(ConflictError):
    """A new version declared a larger privacy budget than its dataset already has."""

    slug = "privacy-budget-increase"
    title = "A dataset's privacy budget cannot increase"


# --- housekeeping ---------------------------------------------------------------------------

_cleaned: set[Path] = set()
_cleaned_lock = threading.Lock()


def spool_dir(settings: Settings) -> Path:
    """Where encrypted upload spools live (ciphertext only; see spool.py)."""
    return settings.home / "tmp" / "uploads"


def clean_at_start(settings: Settings) -> int:
    """Remove spool files left by dead processes; call once when a process starts.

    Uploads also call it (once per process) so a server restarted after a crash is clean
    before its first upload even if the start-up hook is not wired.
    """
    directory = spool_dir(settings)
    with _cleaned_lock:
        _cleaned.add(directory)
    return spool.clean_orphans(directory)


def _clean_once(settings: Settings) -> None:
    if spool_dir(settings) not in _cleaned:
        clean_at_start(settings)


# --- upload ------------------------------------------------------------------------------


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", "")}
        for err in exc.errors()
    ]


def _default_name(filename: str | None) -> str | None:
    if not filename:
        return None
    stem = Path(filename).name.split(".")[0].lower()
    stem = re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")
    return stem[:100] or None


@dataclass
class StagedVersion:
    """An encrypted, validated version in the blob store, not yet registered."""

    version_id: str
    project_id: str
    ref: ObjectRef
    blob_key: str
    blob_sha256: str
    blob_bytes: int
    data_key_id: str
    wrapped_key: bytes
    kek_id: str
    kek_version: int
    format: str
    digest: str
    source_sha256: str
    source_bytes: int
    row_count: int
    label_counts: dict[str, int]
    pii_scan: dict[str, Any]
    declarations: Declarations
    warnings: list[str] = field(default_factory=list)

    @property
    def pii_suspected(self) -> bool:
        return bool(self.pii_scan.get("suspected"))

    def discard(self, store: BlobStore) -> None:
        """Delete the staged blob (registration failed or was refused)."""
        store.delete(self.blob_key)


def stage_rows(
    *,
    provider: KeyProvider,
    store: BlobStore,
    project_id: str,
    declarations: Declarations,
    fmt: str,
    rows: Iterable[formats.Item],
    source: SourceCounter | None = None,
    check_minimums: bool = True,
) -> StagedVersion:
    """Validate and encrypt rows into a new blob under a fresh data key (not registered).

    The data key exists only in memory and wrapped in the returned object until
    ``register_version`` stores it: if the process dies first, the blob (if any) can never
    be decrypted and is removed as an orphan.
    """
    version_id = new_id("dsv")
    ref = ObjectRef(OBJECT_KIND, version_id, project_id)
    key = os.urandom(32)
    wrapped = provider.wrap(key)
    key_id = new_id("dk")
    ingest = Ingest(declarations, check_minimums=check_minimums)
    stream = encrypt_stream(ingest.canonical(rows), data_key=key, key_ref=key_id, ref=ref)
    info = store.put(blob_key(ref), stream)
    del key
    pii = ingest.pii.as_dict()
    warning = ingest.pii.warning()
    return StagedVersion(
        version_id=version_id,
        project_id=project_id,
        ref=ref,
        blob_key=info.key,
        blob_sha256="sha256:" + info.sha256,
        blob_bytes=info.size,
        data_key_id=key_id,
        wrapped_key=wrapped.wrapped,
        kek_id=wrapped.kek_id,
        kek_version=wrapped.kek_version,
        format=fmt,
        digest=ingest.digest,
        source_sha256=source.digest if source else ingest.digest,
        source_bytes=source.size if source else 0,
        row_count=ingest.row_count,
        label_counts=dict(sorted(ingest.label_counts.items())),
        pii_scan=pii,
        declarations=declarations,
        warnings=[warning] if warning else [],
    )


@dataclass
class Upload:
    """A multipart upload whose declarations have been read; the file part comes next."""

    declarations: UploadDeclarations
    format: DataFormat
    name: str | None
    _file: Part
    _reader: MultipartReader

    def stage(
        self, *, provider: KeyProvider, store: BlobStore, settings: Settings, project_id: str
    ) -> StagedVersion:
        """Stream the file part into an encrypted, validated, unregistered version."""
        _clean_once(settings)
        source = SourceCounter(self._file.chunks())
        rows = formats.read_rows(
            self.format, source, self.declarations, spool_dir=spool_dir(settings)
        )
        staged = stage_rows(
            provider=provider,
            store=store,
            project_id=project_id,
            declarations=Declarations.model_validate(
                self.declarations.model_dump(include=set(Declarations.model_fields))
            ),
            fmt=self.format.value,
            rows=rows,
            source=source,
        )
        try:
            rest = self._reader.next_part()
            if rest is not None:
                raise InvalidInputError(
                    f"unexpected multipart part {rest.name!r} after `file`", part=rest.name
                )
        except BaseException:
            staged.discard(store)
            raise
        return staged

    def drain(self) -> None:
        """Consume the rest of the request body, so a 4xx reaches the client cleanly."""
        with contextlib.suppress(Exception):  # the original error is what matters
            self._reader.drain()


def open_upload(*, body: Iterator[bytes], content_type: str | None) -> Upload:
    """Read the `declarations` part (which must come first) and the `file` part's headers."""
    reader = MultipartReader(body, boundary_of(content_type))
    first = reader.next_part()
    if first is None or first.name != "declarations":
        raise InvalidInputError(
            "the first multipart part must be `declarations` (JSON), before the `file` part",
            found=first.name if first else None,
        )
    raw = first.read_all(MAX_DECLARATIONS_BYTES)
    try:
        decl = UploadDeclarations.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInputError(
            "invalid declarations: "
            + "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in _problems(exc)),
            errors=_problems(exc),
        ) from None
    file = reader.next_part()
    if file is None or file.name != "file":
        raise InvalidInputError(
            "the second multipart part must be `file` (the dataset)",
            found=file.name if file else None,
        )
    fmt = formats.detect_format(decl.format, file.filename, file.content_type)
    return Upload(
        declarations=decl,
        format=fmt,
        name=decl.name or _default_name(file.filename),
        _file=file,
        _reader=reader,
    )


DRAIN_ON = (InvalidInputError, UnsupportedMediaTypeError, ConflictError)
"""Errors after which the gateway should drain the body before answering."""


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
    decl = staged.declarations
    ledger.emit(
        session,
        type="dataset.version.created",
        actor=actor,
        project=project_id,
        objects={"dataset": dataset.id, "dataset_version": version.id},
        digests={"content": version.digest, "source": version.source_sha256},
        details={
            "number": number,
            "format": version.format,
            "row_count": version.row_count,
            "label_count": len(version.label_counts),
            "contains_personal_data": decl.contains_personal_data,
            "pii_suspected": staged.pii_suspected,
            "data_categories": list(decl.data_categories),
            "purposes": list(decl.purposes),
            "legal_basis": decl.legal_basis.value,
            "retention_days": decl.retention_days,
            "parent_version": parent_version_id,
        },
    )
    return version


def upload_result(
    version: DatasetVersion, *, dataset_name: str, warnings: list[str]
) -> UploadResult:
    return UploadResult.model_validate(
        {**version.model_dump(), "dataset_name": dataset_name, "warnings": warnings}
    )


# --- reading metadata ------------------------------------------------------------------------


def get_dataset(session: Session, *, project_id: str, dataset_id: str) -> Dataset:
    """The dataset, or NotFound (also when it belongs to another project)."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.project_id != project_id:
        raise NotFoundError(f"dataset {dataset_id!r} does not exist")
    return dataset


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
    row = session.get(DatasetVersion, version_id)
    if row is None or (project_id is not None and row.project_id != project_id):
        raise NotFoundError(f"dataset version {version_id!r} does not exist")
    return row


# --- reading rows (training) -----------------------------------------------------------------


def _ref(version: DatasetVersion) -> ObjectRef:
    return ObjectRef(OBJECT_KIND, version.id, version.project_id)


def iter_version_rows(
    session: Session, *, provider: KeyProvider, store: BlobStore, version: DatasetVersion
) -> Iterator[tuple[str, str, str | None]]:
    """(text, label, subject_id) of each row, decrypted in memory, streaming.

    The content digest is checked at the end: a mismatch raises after the last row, so a
    consumer must treat an exception as the failure of the whole read.
    """
    if version.state != VersionState.active.value:
        raise DatasetVersionShreddedError(
            f"dataset version {version.id} was shredded ({version.shred_reason}) at "
            f"{version.shredded_at.isoformat() if version.shredded_at else 'unknown time'}",
            dataset_version_id=version.id,
        )
    try:
        chunks = read_object(session=session, provider=provider, store=store, ref=_ref(version))
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
        labels.append(label)
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
    )


# --- usage (written by the jobs layer) -------------------------------------------------------


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


# --- shredding -------------------------------------------------------------------------------


def _after_commit(session: Session, action: Callable[[], None]) -> None:
    def run(_session: Any) -> None:
        with contextlib.suppress(Exception):  # deletion only frees space; orphans are swept
            action()

    sa_event.listen(session, "after_commit", run, once=True)


def _shred_version(
    session: Session, *, store: BlobStore, version: DatasetVersion, reason: str, actor: str
) -> list[AffectedUsage]:
    """Destroy a version's data key (crypto-shredding) and mark it; the blob is deleted
    after the transaction commits. Emits ``dataset.version.shredded``."""
    shred(session=session, ref=_ref(version))
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


# --- erasure ---------------------------------------------------------------------------------


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
    versions = [
        v for v in list_versions(session, dataset_id=dataset.id) if v.state == VersionState.active
    ]
    latest = max(versions, key=lambda v: v.number) if versions else None
    if latest is not None and not latest.declarations.get("subject_id_column"):
        raise InvalidInputError(
            f"dataset {dataset.id} declares no subject-id column, so rows cannot be matched "
            "to data subjects"
        )
    holding: list[DatasetVersion] = []
    found: set[str] = set()
    rows_removed = 0
    staged: StagedVersion | None = None
    for version in versions:
        if version is latest:
            continue
        hit = False
        for _text, _label, subject in iter_version_rows(
            session, provider=provider, store=store, version=version
        ):
            if subject in wanted:
                hit = True
                found.add(subject)
        if hit:
            holding.append(version)
    if latest is not None:
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

        decl = Declarations.model_validate(latest.declarations)
        candidate = stage_rows(
            provider=provider,
            store=store,
            project_id=dataset.project_id,
            declarations=decl,
            fmt=latest.format,
            rows=kept(),
            check_minimums=False,
        )
        if removed:
            staged = candidate
            rows_removed = removed
            found |= seen
            holding.append(latest)
        else:
            candidate.discard(store)
    new_version: DatasetVersion | None = None
    try:
        if staged is not None and latest is not None:
            new_version = register_version(
                session,
                staged=staged,
                project_id=dataset.project_id,
                actor=actor,
                dataset=dataset,
                parent_version_id=latest.id,
            )
        affected: list[AffectedUsage] = []
        for version in holding:
            affected.extend(
                _shred_version(session, store=store, version=version, reason="erasure", actor=actor)
            )
    except BaseException:
        if staged is not None:
            staged.discard(store)
        raise
    ledger.emit(
        session,
        type="dataset.subjects.erased",
        actor=actor,
        project=dataset.project_id,
        objects={"dataset": dataset.id}
        | ({"dataset_version": new_version.id} if new_version else {}),
        details={
            "subjects": pseudonyms,
            "subjects_found": len(found),
            "rows_removed": rows_removed,
            "shredded_versions": [v.id for v in holding],
            "affected": [f"{a.used_by_kind}/{a.used_by_id}" for a in affected][:100],
            "affected_count": len(affected),
        },
    )
    return ErasureResult(
        dataset_id=dataset.id,
        subjects=pseudonyms,
        subjects_found=len(found),
        rows_removed=rows_removed,
        new_version=DatasetVersionPublic.model_validate(new_version) if new_version else None,
        shredded_versions=[v.id for v in holding],
        affected=affected,
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
        active = [
            v
            for v in list_versions(session, dataset_id=dataset.id)
            if v.state == VersionState.active
        ]
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


# --- retention -------------------------------------------------------------------------------


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
            _shred_version(session, store=store, version=version, reason="retention", actor=actor)
        )
        if progress is not None:
            progress(done, len(due))
    return SweepResult(
        shredded_versions=[v.id for v in due], affected=affected, orphan_blobs_removed=orphans
    )
