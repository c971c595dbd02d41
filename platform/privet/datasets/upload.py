"""Upload: a multipart request streamed into an encrypted, validated, unregistered version.

An upload is three steps, so that no database transaction is open while bytes arrive:
``open_upload`` reads the declarations part, ``Upload.stage`` streams the file through
parse → validate → canonicalise → digest → encrypt into the blob store (nothing is
registered; on any failure nothing remains), and ``registration.register_version`` records
the version in the caller's (short) transaction. See docs/DATASETS.md.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from privet.config import Settings
from privet.crypto import BlobStore, KeyProvider, ObjectRef, blob_key, encrypt_stream
from privet.datasets import formats, spool
from privet.datasets.ingest import Ingest, SourceCounter
from privet.datasets.items import Item
from privet.datasets.multipart import MultipartReader, Part, boundary_of
from privet.datasets.schemas import Declarations, UploadDeclarations
from privet.datasets.tables import OBJECT_KIND, DataFormat
from privet.kit.errors import ConflictError, InvalidInputError, UnsupportedMediaTypeError
from privet.kit.ids import new_id
from privet.kit.process_state import ProcessRegistry

MAX_DECLARATIONS_BYTES = 64 * 1024
MAX_FORM_FIELDS = 32

# --- housekeeping ---------------------------------------------------------------------------

_cleaned: ProcessRegistry[Path, bool] = ProcessRegistry(
    "datasets.cleaned_spools",
    why="orphaned spool files are removed once per process and spool directory, before "
    "its first upload, whichever Runtime receives it",
)


def spool_dir(settings: Settings) -> Path:
    """Where encrypted upload spools live (ciphertext only; see spool.py)."""
    return settings.home / "tmp" / "uploads"


def clean_at_start(settings: Settings) -> int:
    """Remove spool files left by dead processes; call once when a process starts.

    Uploads also call it (once per process) so a server restarted after a crash is clean
    before its first upload even if the start-up hook is not wired.
    """
    directory = spool_dir(settings)
    _cleaned.set(directory, True)
    return spool.clean_orphans(directory)


def _clean_once(settings: Settings) -> None:
    if _cleaned.get(spool_dir(settings)) is None:
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
    rows: Iterable[Item],
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


def _invalid_declarations(exc: ValidationError) -> InvalidInputError:
    problems = _problems(exc)
    return InvalidInputError(
        "invalid declarations: "
        + "; ".join(f"{'.'.join(e['loc']) or 'body'}: {e['msg']}" for e in problems),
        errors=problems,
    )


class Opener(Protocol):
    """Reads an upload's declarations and opens its file part (API JSON or console form)."""

    def __call__(self, *, body: Iterator[bytes], content_type: str | None) -> Upload: ...


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
        raise _invalid_declarations(exc) from None
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


#: Form fields holding lists: comma-separated tokens.
_LIST_FIELDS = ("purposes", "data_categories")
_FORM_FIELDS = (
    "name", "description", "text_column", "label_column", "subject_id_column",
    "contains_personal_data", "subject_ids_unique", "unlabelled", "legal_basis",
    "retention_days", "epsilon_total", *_LIST_FIELDS,
)  # fmt: skip


def open_form_upload(*, body: Iterator[bytes], content_type: str | None) -> Upload:
    """An upload from a browser form (the console): one small text part per declaration,
    then the `file` part, read as `open_upload` reads its JSON part (bounded, validated
    before a byte of the file is)."""
    reader = MultipartReader(body, boundary_of(content_type))
    fields: dict[str, str] = {}
    budget = MAX_DECLARATIONS_BYTES
    part = reader.next_part()
    while part is not None and part.name != "file":
        if len(fields) >= MAX_FORM_FIELDS or budget <= 0:
            raise InvalidInputError(
                f"the form's fields before `file` exceed {MAX_FORM_FIELDS} fields or "
                f"{MAX_DECLARATIONS_BYTES} bytes",
                limit=MAX_FORM_FIELDS,
            )
        raw = part.read_all(budget)
        budget -= len(raw) + len(part.name)
        fields[part.name] = raw.decode("utf-8", errors="replace").strip()
        part = reader.next_part()
    if part is None:
        raise InvalidInputError("the form has no `file` part (choose a file to upload)")
    decl = declarations_from_form(fields)
    fmt = formats.detect_format(decl.format, part.filename, part.content_type)
    name = decl.name or _default_name(part.filename)
    return Upload(declarations=decl, format=fmt, name=name, _file=part, _reader=reader)


def declarations_from_form(fields: dict[str, str]) -> UploadDeclarations:
    """The form's text fields as declarations: empty means the default, checkboxes are
    present or absent, lists are comma-separated; invalid values name the field."""
    raw: dict[str, Any] = {k: v for k, v in fields.items() if k in _FORM_FIELDS and v != ""}
    for flag in ("contains_personal_data", "subject_ids_unique", "unlabelled"):
        raw[flag] = flag in raw
    if raw["unlabelled"]:  # the form's prefilled label column does not apply
        raw.pop("label_column", None)
    for name in _LIST_FIELDS:
        if name in raw:
            raw[name] = [t.strip() for t in raw[name].split(",") if t.strip()]
    if "epsilon_total" in raw:
        raw["privacy_budget"] = {"epsilon_total": raw.pop("epsilon_total")}
    try:
        return UploadDeclarations.model_validate(raw)
    except ValidationError as exc:
        raise _invalid_declarations(exc) from None


DRAIN_ON = (InvalidInputError, UnsupportedMediaTypeError, ConflictError)
"""Errors after which the gateway should drain the body before answering."""
