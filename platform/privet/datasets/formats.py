"""Format detection and the one entry point to the row readers.

Each reader yields ``(line, text, label, subject_id)`` tuples, or ``RowError`` for a row
that cannot be read, in file order, holding at most one line (or one Parquet batch) of
plaintext at a time. Problems that make the whole file unreadable (no header, missing or
extra columns) raise ``InvalidInputError`` at once. One module per format: ``delimited``
(CSV, TSV), ``jsonl``, ``parquet``; what they yield is in ``items``.

Hostile-input limits (``DatasetSettings``) are enforced as the bytes arrive, never after the
file was read: the longest physical line, the longest text, label or subject id, and the
total text a file decodes to (for Parquet also a compression-ratio guard, checked against
the column chunks' sizes before decoding and against the decoded lengths of every batch
before it becomes Python strings). Each refusal is a 413 naming the setting.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from privet.datasets.delimited import read_csv, read_tsv
from privet.datasets.items import Item
from privet.datasets.jsonl import read_jsonl
from privet.datasets.limits import resolve
from privet.datasets.parquet import read_parquet
from privet.datasets.schemas import Declarations
from privet.datasets.settings import DatasetSettings
from privet.datasets.tables import DataFormat
from privet.kit.errors import UnsupportedMediaTypeError

_EXTENSIONS = {
    ".csv": DataFormat.csv,
    ".tsv": DataFormat.tsv,
    ".tab": DataFormat.tsv,
    ".jsonl": DataFormat.jsonl,
    ".ndjson": DataFormat.jsonl,
    ".parquet": DataFormat.parquet,
    ".pq": DataFormat.parquet,
}
_MEDIA_TYPES = {
    "text/csv": DataFormat.csv,
    "text/tab-separated-values": DataFormat.tsv,
    "application/jsonl": DataFormat.jsonl,
    "application/x-ndjson": DataFormat.jsonl,
    "application/x-jsonlines": DataFormat.jsonl,
    "application/vnd.apache.parquet": DataFormat.parquet,
    "application/x-parquet": DataFormat.parquet,
}


def detect_format(
    declared: DataFormat | None, filename: str | None, content_type: str | None
) -> DataFormat:
    """The declared format, else the file name's extension, else the part's content type."""
    if declared is not None:
        return declared
    name = (filename or "").lower()
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _MEDIA_TYPES:
        return _MEDIA_TYPES[media]
    raise UnsupportedMediaTypeError(
        f"cannot tell the format of {filename or 'the file'!r}"
        f"{f' ({media})' if media else ''}: supported are CSV, TSV, JSON Lines and Parquet "
        "(.csv, .tsv, .jsonl, .parquet), or declare `format`",
        supported=[f.value for f in DataFormat],
    )


def read_rows(
    fmt: DataFormat,
    chunks: Iterable[bytes],
    decl: Declarations,
    *,
    spool_dir: Path,
    limits: DatasetSettings | None = None,
) -> Iterator[Item]:
    """The rows of an uploaded file, under the hostile-input limits (default: from the
    environment, PRIVET_DATASETS_*)."""
    lim = resolve(limits)
    if fmt is DataFormat.csv:
        return read_csv(chunks, decl, lim)
    if fmt is DataFormat.tsv:
        return read_tsv(chunks, decl, lim)
    if fmt is DataFormat.jsonl:
        return read_jsonl(chunks, decl, lim)
    return read_parquet(chunks, decl, spool_dir=spool_dir, limits=lim)
