"""Row readers for CSV, TSV, JSON Lines and Parquet over a stream of byte chunks.

Each reader yields ``(line, text, label, subject_id)`` tuples, or ``RowError`` for a row
that cannot be read, in file order, holding at most one line (or one Parquet batch) of
plaintext at a time. Problems that make the whole file unreadable (no header, missing or
extra columns) raise ``InvalidInputError`` at once.

- CSV: RFC 4180 (comma, double quotes, quoted newlines), UTF-8, optional BOM, header row.
- TSV: IANA text/tab-separated-values: a header row, one record per line, fields split on
  TAB, no quoting; LF or CRLF line ends.
- JSON Lines: one JSON object per line, UTF-8; blank lines are skipped.
- Parquet: spooled encrypted (see spool.py) and read back by row batches; memory is bounded
  by the file's largest row group, which must not exceed ``MAX_ROW_GROUP_BYTES``.

Hostile-input limits (``DatasetSettings``) are enforced as the bytes arrive, never after the
file was read: the longest physical line, the longest text, label or subject id, and the
total text a file decodes to (for Parquet also a compression-ratio guard, checked against
the column chunks' sizes before decoding and against the decoded lengths of every batch
before it becomes Python strings). Each refusal is a 413 naming the setting.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privet.datasets.settings import PARQUET_EXPANSION_FLOOR, DatasetSettings, get_dataset_settings
from privet.datasets.tables import DataFormat, Declarations
from privet.kit.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError

MAX_ROW_GROUP_BYTES = 256 << 20
PARQUET_BATCH_ROWS = 256  # x max_text_chars bounds one decoded batch
_BOM = "\ufeff"

Row = tuple[int, str, str, str | None]


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    problem: str


@dataclass(slots=True)
class Batch:
    """Consecutive well-formed rows starting at line `start` (one line each), as columns:
    the fast path, processed by Ingest with C-level operations."""

    start: int
    texts: list[str]
    labels: list[str]
    subjects: list[str] | None

    def rows(self) -> Iterator[Row]:
        subjects = self.subjects if self.subjects is not None else [None] * len(self.texts)
        for i, (t, label, subj) in enumerate(zip(self.texts, self.labels, subjects, strict=True)):
            yield (self.start + i, t, label, subj)


Item = Row | RowError | Batch
BATCH_ROWS = 1024


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


class _Columns:
    def __init__(self, decl: Declarations) -> None:
        self.text = decl.text_column
        self.label = decl.label_column
        self.subject = decl.subject_id_column
        self.expected = [c for c in (self.text, self.label, self.subject) if c is not None]

    def check(self, found: list[str]) -> None:
        dupes = sorted({c for c in found if found.count(c) > 1})
        if dupes:
            raise InvalidInputError(f"duplicate column(s) in the header: {dupes}", columns=found)
        missing = [c for c in self.expected if c not in found]
        extra = [c for c in found if c not in self.expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing column(s) {missing}")
            if extra:
                parts.append(f"extra column(s) {extra}")
            raise InvalidInputError(
                f"{' and '.join(parts)}: the file's columns must be exactly the declared "
                f"text, label and subject-id columns {self.expected}",
                missing_columns=missing,
                extra_columns=extra,
                columns=found,
            )


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{what} must be a string or an integer, not {type(value).__name__}")


def _limits(limits: DatasetSettings | None) -> DatasetSettings:
    return limits if limits is not None else get_dataset_settings()


def text_too_long(
    limits: DatasetSettings, line: int, what: str, length: int
) -> PayloadTooLargeError:
    limit = limits.max_text_chars
    return PayloadTooLargeError(
        f"line {line}: the {what} has {length} characters, more than the limit of {limit} "
        f"(PRIVET_DATASETS_MAX_TEXT_CHARS): shorten or split long texts (training reads only "
        "the first few hundred tokens of each), or ask the operator to raise the limit",
        limit="max_text_chars",
        value=limit,
        line=line,
    )


def decoded_too_large(
    limits: DatasetSettings, allowed: int, *, ratio: bool
) -> PayloadTooLargeError:
    if ratio:
        return PayloadTooLargeError(
            f"the Parquet file decodes to more than {allowed} bytes of text, over "
            f"{limits.parquet_max_expansion} times its own size "
            "(PRIVET_DATASETS_PARQUET_MAX_EXPANSION, a compression-bomb guard): upload it "
            "with lighter compression or as CSV/JSON Lines, or ask the operator to raise the limit",
            limit="parquet_max_expansion",
            value=limits.parquet_max_expansion,
            allowed_bytes=allowed,
        )
    return PayloadTooLargeError(
        f"the file decodes to more than {allowed} bytes of text, the limit "
        "(PRIVET_DATASETS_MAX_DECODED_BYTES): split it into several dataset versions, or ask "
        "the operator to raise the limit",
        limit="max_decoded_bytes",
        value=limits.max_decoded_bytes,
    )


def _check_lengths(
    limits: DatasetSettings, start: int, columns: Iterable[tuple[str, list[str] | None]]
) -> None:
    """Refuse the first value longer than max_text_chars (C-level max() per column)."""
    cap = limits.max_text_chars
    for what, values in columns:
        if values and max(map(len, values)) > cap:
            i = next(i for i, v in enumerate(values) if len(v) > cap)
            raise text_too_long(limits, start + i, what, len(values[i]))


def _blocks(chunks: Iterable[bytes], limits: DatasetSettings) -> Iterator[bytes]:
    """Runs of whole lines: every block but possibly the last ends with b"\\n". Refuses a
    line over max_line_bytes and a file over max_decoded_bytes as soon as it arrives."""
    pending = b""
    max_line, max_total = limits.max_line_bytes, limits.max_decoded_bytes
    total = lines = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_total:
            raise decoded_too_large(limits, max_total, ratio=False)
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if len(pending) > max_line:
            line = lines + data.count(b"\n", 0, cut) + 1
            raise PayloadTooLargeError(
                f"line {line} is longer than {max_line} bytes, the limit "
                "(PRIVET_DATASETS_MAX_LINE_BYTES): shorten or split long texts, or ask the "
                "operator to raise the limit",
                limit="max_line_bytes",
                value=max_line,
                line=line,
            )
        if cut:
            lines += data.count(b"\n", 0, cut)
            yield data[:cut]
    if pending:
        yield pending


def _split_keepends(block: bytes) -> list[bytes]:
    parts = block.split(b"\n")
    last = parts.pop()
    out = [p + b"\n" for p in parts]
    if last:
        out.append(last)
    return out


def _lines(chunks: Iterable[bytes], limits: DatasetSettings) -> Iterator[bytes]:
    """Physical lines (with their line end) from byte chunks; the last may lack one."""
    for block in _blocks(chunks, limits):
        yield from _split_keepends(block)


def _text_lines(
    chunks: Iterable[bytes], bad: list[int], limits: DatasetSettings
) -> Iterator[list[str]]:
    """UTF-8 lines with their line ends, a block (list) at a time. A block that does not
    decode is decoded line by line: bad lines are replaced and their numbers put in `bad`.
    Blocks are decoded whole and split in C, which is what keeps ingest near csv speed."""
    number = 0
    first = True
    for block in _blocks(chunks, limits):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            lines = []
            for raw in _split_keepends(block):
                number += 1
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    bad.append(number)
                    lines.append(raw.decode("utf-8", "replace"))
        else:
            lines = text.split("\n")
            last = lines.pop()
            lines = [line + "\n" for line in lines]
            if last:
                lines.append(last)
            number += len(lines)
        if first and lines:
            first = False
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][1:]
        yield lines


def _decoded(chunks: Iterable[bytes], bad: list[int], limits: DatasetSettings) -> Iterator[str]:
    return itertools.chain.from_iterable(_text_lines(chunks, bad, limits))


_CSV_FIELD_LIMIT = "field larger than field limit"


def read_csv(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    lim = _limits(limits)
    cols = _Columns(decl)
    bad: list[int] = []
    reader = csv.reader(_decoded(chunks, bad, lim), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError("the file is empty: a header row is required") from None
    except csv.Error as exc:
        raise InvalidInputError(f"line 1: the header cannot be parsed: {exc}") from None
    if bad and bad[0] == 1:
        raise InvalidInputError("line 1: the header is not valid UTF-8", line_numbers=[1])
    cols.check(header)
    ti, li = header.index(cols.text), header.index(cols.label)
    si = header.index(cols.subject) if cols.subject else None
    width = len(header)
    while True:
        before = reader.line_num
        records: list[list[str]] = []
        failure: RowError | None = None
        try:
            # extend keeps the records read before a parse error
            records.extend(itertools.islice(reader, BATCH_ROWS))
        except csv.Error as exc:
            if _CSV_FIELD_LIMIT in str(exc):  # csv's own cap (128 Ki characters) per field
                raise text_too_long(
                    lim, reader.line_num, "field", csv.field_size_limit() + 1
                ) from None
            failure = RowError(reader.line_num, f"cannot be parsed as CSV: {exc}")
        if not records and failure is None:
            return
        after = reader.line_num
        simple = failure is None and after - before == len(records)
        if (
            simple
            and not (bad and bad[0] <= after)
            and len(records[0]) == width
            and len(set(map(len, records))) == 1
        ):
            batch = Batch(
                start=before + 1,
                texts=[r[ti] for r in records],
                labels=[r[li] for r in records],
                subjects=[r[si] for r in records] if si is not None else None,
            )
            _check_lengths(
                lim,
                batch.start,
                (("text", batch.texts), ("label", batch.labels), ("subject id", batch.subjects)),
            )
            yield batch
            continue
        # slow path: multi-line records, bad encoding, wrong widths, blank lines, errors
        start = before + 1
        for record in records:
            end = start + (0 if simple else sum(f.count("\n") for f in record))
            if bad and bad[0] <= end:
                yield RowError(bad[0], "not valid UTF-8")
                bad[:] = [n for n in bad if n > end]
            elif len(record) != width:
                if record:
                    yield RowError(start, f"has {len(record)} fields, the header has {width}")
            else:
                row = (start, record[ti], record[li], record[si] if si is not None else None)
                _check_row(lim, row)
                yield row
            start = end + 1
        if failure is not None:
            yield failure


def _check_row(limits: DatasetSettings, row: Row) -> None:
    line, text, label, subject = row
    cap = limits.max_text_chars
    if len(text) > cap or len(label) > cap or (subject is not None and len(subject) > cap):
        _check_lengths(
            limits, line, (("text", [text]), ("label", [label]), ("subject id", [subject or ""]))
        )


def read_tsv(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    lim = _limits(limits)
    cols = _Columns(decl)
    bad: list[int] = []
    number = 0
    ti = li = width = 0
    si: int | None = None
    header: list[str] | None = None
    for lines in _text_lines(chunks, bad, lim):
        first = number + 1
        number += len(lines)
        if header is None:
            if bad and bad[0] == 1:
                raise InvalidInputError("line 1: the header is not valid UTF-8", line_numbers=[1])
            header = lines[0].rstrip("\r\n").split("\t")
            cols.check(header)
            ti, li = header.index(cols.text), header.index(cols.label)
            si = header.index(cols.subject) if cols.subject else None
            width = len(header)
            lines = lines[1:]
            first += 1
        if not lines:
            continue
        stripped = [line.rstrip("\r\n") for line in lines]
        fields = [line.split("\t") for line in stripped]
        if (
            not (bad and bad[0] <= number)
            and "" not in stripped
            and len(fields[0]) == width
            and len(set(map(len, fields))) == 1
        ):
            batch = Batch(
                start=first,
                texts=[f[ti] for f in fields],
                labels=[f[li] for f in fields],
                subjects=[f[si] for f in fields] if si is not None else None,
            )
            _check_lengths(
                lim,
                batch.start,
                (("text", batch.texts), ("label", batch.labels), ("subject id", batch.subjects)),
            )
            yield batch
            continue
        for offset, (line, parts) in enumerate(zip(stripped, fields, strict=True)):
            at = first + offset
            if bad and bad[0] == at:
                bad.pop(0)
                yield RowError(at, "not valid UTF-8")
            elif not line:
                continue
            elif len(parts) != width:
                yield RowError(at, f"has {len(parts)} tab-separated fields, the header has {width}")
            else:
                row = (at, parts[ti], parts[li], parts[si] if si is not None else None)
                _check_row(lim, row)
                yield row
    if header is None:
        raise InvalidInputError("the file is empty: a header row is required")


def read_jsonl(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    lim = _limits(limits)
    cols = _Columns(decl)
    expected = set(cols.expected)
    for number, raw in enumerate(_lines(chunks, lim), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield RowError(number, "not valid UTF-8")
            continue
        if number == 1 and line.startswith(_BOM):
            line = line[1:]
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield RowError(number, f"not valid JSON: {exc.args[0] if exc.args else exc}")
            continue
        except RecursionError:
            yield RowError(number, "nests JSON arrays or objects too deeply to be a row")
            continue
        if not isinstance(obj, dict):
            yield RowError(number, f"is a JSON {type(obj).__name__}, not an object")
            continue
        if obj.keys() != expected:
            missing = sorted(expected - obj.keys())
            extra = sorted(obj.keys() - expected)
            what = "; ".join(
                p
                for p in (
                    f"missing key(s) {missing}" if missing else "",
                    f"extra key(s) {extra}" if extra else "",
                )
                if p
            )
            yield RowError(number, what)
            continue
        try:
            text = obj[cols.text]
            if not isinstance(text, str):
                raise ValueError(f"{cols.text!r} must be a string")
            label = _scalar(obj[cols.label], repr(cols.label))
            subject = _scalar(obj[cols.subject], repr(cols.subject)) if cols.subject else None
            if "\\u" in line:  # an escape may hide a lone surrogate: not encodable
                for value in (text, label, subject or ""):
                    value.encode("utf-8")
        except UnicodeEncodeError:
            yield RowError(number, "holds a lone surrogate escape: not valid Unicode text")
            continue
        except ValueError as exc:
            yield RowError(number, str(exc))
            continue
        row = (number, text, label, subject)
        _check_row(lim, row)
        yield row


def _decoded_allowance(limits: DatasetSettings, file_bytes: int) -> tuple[int, bool]:
    """Most text bytes a Parquet file of `file_bytes` may decode to, and whether the
    compression-ratio guard (rather than max_decoded_bytes) is what sets it."""
    by_ratio = max(PARQUET_EXPANSION_FLOOR, limits.parquet_max_expansion * file_bytes)
    if by_ratio < limits.max_decoded_bytes:
        return by_ratio, True
    return limits.max_decoded_bytes, False


def read_parquet(
    chunks: Iterable[bytes],
    decl: Declarations,
    *,
    spool_dir: Path,
    limits: DatasetSettings | None = None,
) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from privet.datasets.spool import EncryptedSpool

    lim = _limits(limits)
    cols = _Columns(decl)
    with EncryptedSpool(spool_dir) as spool:
        for chunk in chunks:
            spool.write(chunk)
            if spool.size > lim.max_decoded_bytes:
                raise decoded_too_large(lim, lim.max_decoded_bytes, ratio=False)
        spool.finish()
        allowed, by_ratio = _decoded_allowance(lim, spool.size)
        try:
            handle = pq.ParquetFile(spool.reader())
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"not a readable Parquet file: {exc}") from None
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
        number = 0
        decoded = 0
        cap = lim.max_text_chars
        try:
            for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=cols.expected):
                # Sizes from Arrow's buffers before any Python string exists: a dictionary
                # page repeated a million times is refused here, not after expansion.
                for k, what in enumerate(("text", "label", "subject id")[: batch.num_columns]):
                    column = batch.column(k)
                    if not (
                        pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                    ):
                        continue
                    decoded += int(pc.sum(pc.binary_length(column)).as_py() or 0)
                    if decoded > allowed:
                        raise decoded_too_large(lim, allowed, ratio=by_ratio)
                    chars = pc.utf8_length(column)
                    longest = pc.max(chars).as_py()
                    if longest is not None and longest > cap:
                        at = pc.index(chars, longest).as_py()
                        raise text_too_long(lim, number + at + 1, what, longest)
                texts = batch.column(0).to_pylist()
                labels = batch.column(1).to_pylist()
                subjects = batch.column(2).to_pylist() if cols.subject else [None] * len(texts)
                for text, label, subject in zip(texts, labels, subjects, strict=True):
                    number += 1
                    if text is None or label is None or (cols.subject and subject is None):
                        yield RowError(number, "has a null value")
                        continue
                    try:
                        yield (
                            number,
                            text,
                            _scalar(label, repr(cols.label)),
                            _scalar(subject, repr(cols.subject)) if cols.subject else None,
                        )
                    except ValueError as exc:
                        yield RowError(number, str(exc))
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"the Parquet file cannot be read: {exc}") from None


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
    lim = _limits(limits)
    if fmt is DataFormat.csv:
        return read_csv(chunks, decl, lim)
    if fmt is DataFormat.tsv:
        return read_tsv(chunks, decl, lim)
    if fmt is DataFormat.jsonl:
        return read_jsonl(chunks, decl, lim)
    return read_parquet(chunks, decl, spool_dir=spool_dir, limits=lim)
