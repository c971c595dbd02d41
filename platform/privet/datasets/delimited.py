"""CSV and TSV readers: header row, then one record per row, batched on the fast path.

- CSV: RFC 4180 (comma, double quotes, quoted newlines), UTF-8, optional BOM, header row.
- TSV: IANA text/tab-separated-values: a header row, one record per line, fields split on
  TAB, no quoting; LF or CRLF line ends.

Well-formed runs of rows become a ``Batch`` (columns, checked with C-level operations);
anything unusual falls back to row-by-row reading with a ``RowError`` per bad row.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Iterator

from privet.datasets.items import BATCH_ROWS, Batch, Columns, Item, RowError
from privet.datasets.limits import check_lengths, check_row, resolve, text_too_long
from privet.datasets.lines import decoded, text_lines
from privet.datasets.schemas import Declarations
from privet.datasets.settings import DatasetSettings
from privet.kit.errors import InvalidInputError

_CSV_FIELD_LIMIT = "field larger than field limit"


def _checked_batch(
    lim: DatasetSettings,
    start: int,
    records: list[list[str]],
    ti: int,
    li: int | None,
    si: int | None,
) -> Batch:
    """A run of well-formed records (all of the header's width) as columns, refused if a
    value is longer than the limit."""
    batch = Batch(
        start=start,
        texts=[r[ti] for r in records],
        labels=[r[li] for r in records] if li is not None else None,
        subjects=[r[si] for r in records] if si is not None else None,
    )
    check_lengths(
        lim,
        batch.start,
        (("text", batch.texts), ("label", batch.labels), ("subject id", batch.subjects)),
    )
    return batch


def _at(record: list[str], index: int | None) -> str | None:
    """The field at `index`, or None for a column not declared (label, subject id)."""
    return record[index] if index is not None else None


def read_csv(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    """CSV rows in file order; a parse error ends the file after the rows before it."""
    lim = resolve(limits)
    cols = Columns(decl)
    bad: list[int] = []
    reader = csv.reader(decoded(chunks, bad, lim), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInputError("the file is empty: a header row is required") from None
    except csv.Error as exc:
        raise InvalidInputError(f"line 1: the header cannot be parsed: {exc}") from None
    if bad and bad[0] == 1:
        raise InvalidInputError("line 1: the header is not valid UTF-8", line_numbers=[1])
    cols.check(header)
    ti, li, si = cols.positions(header)
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
            yield _checked_batch(lim, before + 1, records, ti, li, si)
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
                row = (start, record[ti], _at(record, li), _at(record, si))
                check_row(lim, row)
                yield row
            start = end + 1
        if failure is not None:
            yield failure


def read_tsv(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    """TSV rows in file order; with no quoting, each line is a record on its own."""
    lim = resolve(limits)
    cols = Columns(decl)
    bad: list[int] = []
    number = 0
    ti = width = 0
    li: int | None = None
    si: int | None = None
    header: list[str] | None = None
    for lines in text_lines(chunks, bad, lim):
        first = number + 1
        number += len(lines)
        if header is None:
            if bad and bad[0] == 1:
                raise InvalidInputError("line 1: the header is not valid UTF-8", line_numbers=[1])
            header = lines[0].rstrip("\r\n").split("\t")
            cols.check(header)
            ti, li, si = cols.positions(header)
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
            yield _checked_batch(lim, first, fields, ti, li, si)
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
                row = (at, parts[ti], _at(parts, li), _at(parts, si))
                check_row(lim, row)
                yield row
    if header is None:
        raise InvalidInputError("the file is empty: a header row is required")
