"""Validation, statistics, PII scan and the canonical content form, in one streaming pass.

Canonical content (what is encrypted, and what the version digest is the SHA-256 of):
one line per row, in file order, each the JSON array ``[text, label, subject_id]``
(``subject_id`` is ``null`` when no subject-id column is declared, ``label`` is ``null`` in
an unlabelled upload; labels and subject ids are strings, integers in the source becoming
their decimal form) serialised by
``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``, UTF-8 encoded, each line
ending in ``\\n``. The same content uploaded as CSV, TSV, JSON Lines or Parquet therefore
has the same digest, and anyone holding the decrypted blob can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from json.encoder import encode_basestring
from typing import Any

from privet.datasets.items import Batch, Item, Row, RowError
from privet.datasets.pii import PiiScan, may_hold_pii
from privet.datasets.schemas import Declarations
from privet.kit.errors import InvalidInputError

MIN_ROWS_PER_LABEL = 3
"""Each label needs one row in each of train, validation and test."""
MAX_LABELS = 1000
MAX_REPORTED_ERRORS = 20
BATCH_CHARS = 256 * 1024
_enc = encode_basestring  # what json.dumps(..., ensure_ascii=False) uses for strings


_LINE = "[{},{},{}]\n".format


def _json(value: str | None) -> str:
    return "null" if value is None else _enc(value)


def row_line(text: str, label: str | None, subject: str | None) -> str:
    """One canonical line: exactly json.dumps([text, label, subject], ensure_ascii=False,
    separators=(",", ":")) + "\\n", built from the C string encoder for speed."""
    return f"[{_enc(text)},{_json(label)},{_json(subject)}]\n"


def encode_row(text: str, label: str | None, subject: str | None) -> bytes:
    return row_line(text, label, subject).encode("utf-8")


def decode_rows(chunks: Iterable[bytes]) -> Iterator[tuple[str, str | None, str | None]]:
    """Rows back from canonical content chunks (bounded memory)."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        for line in lines:
            text, label, subject = json.loads(line)
            yield text, label, subject
    if pending:
        raise ValueError("canonical content does not end with a newline")


class SourceCounter:
    """Passes byte chunks through, counting them and hashing them (the source digest)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self._hash = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _encoded(values: list[str] | None, n: int) -> Iterator[str]:
    """A column's JSON strings, or `n` nulls for a column not declared."""
    return map(_enc, values) if values is not None else repeat("null", n)


@dataclass
class Ingest:
    """Consumes rows, yields canonical content; raises InvalidInputError at the end if the
    rows or their totals are not acceptable (so nothing is stored)."""

    decl: Declarations
    check_minimums: bool = True
    row_count: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    pii: PiiScan = field(default_factory=PiiScan)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)
    _subjects: set[bytes] | None = None

    @property
    def digest(self) -> str:
        return "sha256:" + str(self._hash.hexdigest())

    def _error(self, line: int, problem: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "problem": problem})

    def _flush(self, batch: list[str]) -> bytes:
        try:
            data = "".join(batch).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("the file holds text that is not valid Unicode") from None
        self._hash.update(data)
        batch.clear()
        return data

    def _row(self, row: Row) -> str | None:
        """Check and count one row; its canonical line, or None (invalid, or not storing)."""
        line, text, label, subject = row
        if not text or text.isspace():
            self._error(line, "empty text")
            return None
        if label is not None and (not label or label.isspace()):
            self._error(line, "empty label")
            return None
        if subject is not None:
            if not subject or subject.isspace():
                self._error(line, "empty subject id")
                return None
            if self._subjects is not None:
                key = hashlib.blake2b(subject.encode(), digest_size=16).digest()
                if key in self._subjects:
                    self._error(line, "duplicate subject id (declared unique)")
                    return None
                self._subjects.add(key)
        if label is not None and not self._count(line, label):
            return None
        self.row_count += 1
        if may_hold_pii(text):
            self.pii.scan(text, line)
        if self.error_count:
            return None  # keep looking for more problems, store nothing
        return row_line(text, label, subject)

    def _count(self, line: int, label: str) -> bool:
        """Count one row's label; False (an error) past MAX_LABELS distinct labels."""
        counts = self.label_counts
        if label in counts:
            counts[label] += 1
        elif len(counts) >= MAX_LABELS:
            self._error(line, f"more than {MAX_LABELS} distinct labels")
            return False
        else:
            counts[label] = 1
        return True

    def _batch_clean(self, batch: Batch) -> bool:
        """No row of the batch can fail a per-row check (so C-level processing is exact)."""
        isspace = str.isspace
        columns = [batch.texts]
        if batch.labels is not None:
            columns.append(batch.labels)
        if batch.subjects is not None:
            if self._subjects is not None:
                return False
            columns.append(batch.subjects)
        return not any("" in c or any(map(isspace, c)) for c in columns)

    def _batch(self, batch: Batch) -> str | None:
        """A clean batch's canonical lines, built with C-level map/join (the fast path)."""
        texts = batch.texts
        counts = self.label_counts
        for label, n in Counter(batch.labels or ()).items():
            counts[label] = counts.get(label, 0) + n
        if len(counts) > MAX_LABELS:
            self._error(batch.start, f"more than {MAX_LABELS} distinct labels")
            return None
        self.row_count += len(texts)
        for i in compress(range(len(texts)), map(may_hold_pii, texts)):
            self.pii.scan(texts[i], batch.start + i)
        if self.error_count:
            return None
        return "".join(
            map(_LINE, map(_enc, texts), _encoded(batch.labels, len(texts)),
                _encoded(batch.subjects, len(texts)))
        )  # fmt: skip

    def canonical(self, items: Iterable[Item]) -> Iterator[bytes]:
        self._subjects = set() if self.decl.subject_ids_unique else None
        out: list[str] = []
        size = 0
        for item in items:
            if self.error_count >= MAX_REPORTED_ERRORS:
                break
            kind = type(item)
            if kind is Batch:
                assert isinstance(item, Batch)
                if self._batch_clean(item):
                    lines = self._batch(item)
                    if lines:
                        out.append(lines)
                        size += len(lines)
                else:
                    for row in item.rows():
                        line = self._row(row)
                        if line is not None:
                            out.append(line)
                            size += len(line)
            elif kind is RowError:
                assert isinstance(item, RowError)
                self._error(item.line, item.problem)
                continue
            else:
                line = self._row(item)  # type: ignore[arg-type]
                if line is not None:
                    out.append(line)
                    size += len(line)
            if size >= BATCH_CHARS:
                yield self._flush(out)
                size = 0
        self.finish_checks()
        if out:
            yield self._flush(out)

    def finish_checks(self) -> None:
        if self.error_count:
            first = self.errors[0]
            more = "" if self.error_count == 1 else f" ({self.error_count} invalid rows reported)"
            raise InvalidInputError(
                f"line {first['line']}: {first['problem']}{more}",
                line_numbers=[e["line"] for e in self.errors],
                errors=self.errors,
            )
        if self.row_count == 0:
            raise InvalidInputError("the file has a header but no rows")
        if not self.check_minimums or self.decl.unlabelled:
            return
        if len(self.label_counts) < 2:
            raise InvalidInputError(
                f"fewer than two labels: every row has label {next(iter(self.label_counts))!r}",
                label_counts=self.label_counts,
            )
        small = {k: v for k, v in self.label_counts.items() if v < MIN_ROWS_PER_LABEL}
        if small:
            raise InvalidInputError(
                f"label(s) with too few examples to split into train/validation/test "
                f"(each needs at least {MIN_ROWS_PER_LABEL}): {small}",
                label_counts=self.label_counts,
                min_rows_per_label=MIN_ROWS_PER_LABEL,
            )
