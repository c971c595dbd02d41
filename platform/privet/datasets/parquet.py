"""Parquet reader: the upload is spooled encrypted (see spool.py) and read back by batches.

Parquet cannot be read as a stream (its footer comes last), so the file is first written
to an encrypted spool. Memory is bounded by the file's largest row group, which must not
exceed ``MAX_ROW_GROUP_BYTES``. A compression-ratio guard is checked against the column
chunks' sizes before decoding and against the decoded lengths of every batch before it
becomes Python strings, so a compression bomb is refused before it expands.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from privet.datasets.items import Columns, Item, RowError, scalar
from privet.datasets.limits import decoded_too_large, resolve, text_too_long
from privet.datasets.schemas import Declarations
from privet.datasets.settings import PARQUET_EXPANSION_FLOOR, DatasetSettings
from privet.datasets.spool import EncryptedSpool
from privet.kit.errors import InvalidInputError, PayloadTooLargeError

MAX_ROW_GROUP_BYTES = 256 << 20
PARQUET_BATCH_ROWS = 256  # x max_text_chars bounds one decoded batch


def _decoded_allowance(limits: DatasetSettings, file_bytes: int) -> tuple[int, bool]:
    """Most text bytes a Parquet file of `file_bytes` may decode to, and whether the
    compression-ratio guard (rather than max_decoded_bytes) is what sets it."""
    by_ratio = max(PARQUET_EXPANSION_FLOOR, limits.parquet_max_expansion * file_bytes)
    if by_ratio < limits.max_decoded_bytes:
        return by_ratio, True
    return limits.max_decoded_bytes, False


def _open(spool: EncryptedSpool) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(spool.reader())
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"not a readable Parquet file: {exc}") from None


def _check_metadata(
    handle: Any, cols: Columns, lim: DatasetSettings, allowed: int, by_ratio: bool
) -> None:
    """Refuse the file from its footer alone: columns, row-group sizes, declared decoded
    size, text column type. Nothing has been decompressed yet."""
    import pyarrow as pa

    meta = handle.metadata
    names = list(handle.schema_arrow.names)
    cols.check(names)
    for i in range(meta.num_row_groups):
        size = meta.row_group(i).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            raise PayloadTooLargeError(
                f"row group {i} holds {size} bytes uncompressed, more than "
                f"{MAX_ROW_GROUP_BYTES}: write the file with smaller row groups",
                row_group=i,
            )
    # What the column chunks say they decode to (honest writers' bombs stop here,
    # before anything is decompressed); the decoded batches are counted below as well.
    wanted = {i for i, name in enumerate(names) if name in cols.expected}
    declared = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            if j in wanted:
                declared += max(0, group.column(j).total_uncompressed_size)
    if declared > allowed:
        raise decoded_too_large(lim, allowed, ratio=by_ratio)
    types = {f.name: f.type for f in handle.schema_arrow}
    if not (pa.types.is_string(types[cols.text]) or pa.types.is_large_string(types[cols.text])):
        raise InvalidInputError(
            f"column {cols.text!r} must be a string column, not {types[cols.text]}"
        )


def _check_batch(
    batch: Any,
    lim: DatasetSettings,
    roles: list[tuple[str, str]],
    *,
    allowed: int,
    by_ratio: bool,
    decoded: int,
    number: int,
) -> int:
    """Sizes from Arrow's buffers before any Python string exists: a dictionary page
    repeated a million times is refused here, not after expansion. Returns the decoded
    total so far."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cap = lim.max_text_chars
    for what, name in roles:
        column = batch.column(name)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        decoded += int(pc.sum(pc.binary_length(column)).as_py() or 0)
        if decoded > allowed:
            raise decoded_too_large(lim, allowed, ratio=by_ratio)
        chars = pc.utf8_length(column)
        longest = pc.max(chars).as_py()
        if longest is not None and longest > cap:
            at = pc.index(chars, longest).as_py()
            raise text_too_long(lim, number + at + 1, what, longest)
    return decoded


def _batch_rows(batch: Any, cols: Columns, number: int) -> Iterator[Item]:
    """A checked batch's rows; `number` is the count of rows before it."""
    texts = batch.column(cols.text).to_pylist()
    absent = [None] * len(texts)
    labels = batch.column(cols.label).to_pylist() if cols.label else absent
    subjects = batch.column(cols.subject).to_pylist() if cols.subject else absent
    for text, label, subject in zip(texts, labels, subjects, strict=True):
        number += 1
        if text is None or (cols.label and label is None) or (cols.subject and subject is None):
            yield RowError(number, "has a null value")
            continue
        try:
            yield (
                number,
                text,
                scalar(label, repr(cols.label)) if cols.label else None,
                scalar(subject, repr(cols.subject)) if cols.subject else None,
            )
        except ValueError as exc:
            yield RowError(number, str(exc))


def read_parquet(
    chunks: Iterable[bytes],
    decl: Declarations,
    *,
    spool_dir: Path,
    limits: DatasetSettings | None = None,
) -> Iterator[Item]:
    """Parquet rows in file order, read back from an encrypted spool one batch at a time."""
    import pyarrow as pa

    lim = resolve(limits)
    cols = Columns(decl)
    with EncryptedSpool(spool_dir) as spool:
        for chunk in chunks:
            spool.write(chunk)
            if spool.size > lim.max_decoded_bytes:
                raise decoded_too_large(lim, lim.max_decoded_bytes, ratio=False)
        spool.finish()
        allowed, by_ratio = _decoded_allowance(lim, spool.size)
        handle = _open(spool)
        _check_metadata(handle, cols, lim, allowed, by_ratio)
        number = 0
        decoded = 0
        try:
            for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=cols.expected):
                decoded = _check_batch(
                    batch, lim, cols.roles, allowed=allowed, by_ratio=by_ratio,
                    decoded=decoded, number=number,
                )  # fmt: skip
                yield from _batch_rows(batch, cols, number)
                number += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"the Parquet file cannot be read: {exc}") from None
