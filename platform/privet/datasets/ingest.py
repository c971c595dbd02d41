"""Validation, statistics, PII scan and the canonical content form, in one streaming pass.

Canonical content (what is encrypted, and what the version digest is the SHA-256 of):
one line per row, in file order, each the JSON array ``[text, label, subject_id]``
(``subject_id`` is ``null`` when no subject-id column is declared; labels and subject ids
are strings, integers in the source becoming their decimal form) serialised by
``json.dumps(row, ensure_ascii=False, separators=(",", ":"))``, UTF-8 encoded, each line
ending in ``\\n``. The same content uploaded as CSV, TSV, JSON Lines or Parquet therefore
has the same digest, and anyone holding the decrypted blob can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from privet.datasets.formats import Row, RowError
from privet.datasets.models import MAX_LABELS, MIN_ROWS_PER_LABEL, Declarations
from privet.datasets.pii import PiiScan, may_hold_pii
from privet.kit.errors import InvalidInputError

MAX_REPORTED_ERRORS = 20
BATCH_CHARS = 256 * 1024
_enc = encode_basestring  # what json.dumps(..., ensure_ascii=False) uses for strings


def row_line(text: str, label: str, subject: str | None) -> str:
    """One canonical line: exactly json.dumps([text, label, subject], ensure_ascii=False,
    separators=(",", ":")) + "\\n", built from the C string encoder for speed."""
    return f"[{_enc(text)},{_enc(label)},{'null' if subject is None else _enc(subject)}]\n"


def encode_row(text: str, label: str, subject: str | None) -> bytes:
    return row_line(text, label, subject).encode("utf-8")


def decode_rows(chunks: Iterable[bytes]) -> Iterator[tuple[str, str, str | None]]:
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

    def canonical(self, rows: Iterable[Row | RowError]) -> Iterator[bytes]:
        subjects: set[bytes] | None = set() if self.decl.subject_ids_unique else None
        batch: list[str] = []
        size = 0
        counts = self.label_counts
        trigger = may_hold_pii
        scan = self.pii.scan
        blake2b = hashlib.blake2b
        for row in rows:
            if type(row) is RowError:
                self._error(row.line, row.problem)
                if self.error_count >= MAX_REPORTED_ERRORS:
                    break
                continue
            line, text, label, subject = row  # type: ignore[misc]
            if not text or text.isspace():
                self._error(line, "empty text")
                continue
            if not label or label.isspace():
                self._error(line, "empty label")
                continue
            if subject is not None:
                if not subject or subject.isspace():
                    self._error(line, "empty subject id")
                    continue
                if subjects is not None:
                    key = blake2b(subject.encode(), digest_size=16).digest()
                    if key in subjects:
                        self._error(line, "duplicate subject id (declared unique)")
                        continue
                    subjects.add(key)
            try:
                counts[label] += 1
            except KeyError:
                if len(counts) >= MAX_LABELS:
                    self._error(line, f"more than {MAX_LABELS} distinct labels")
                    continue
                counts[label] = 1
            self.row_count += 1
            if trigger(text):
                scan(text, line)
            if self.error_count:
                if self.error_count >= MAX_REPORTED_ERRORS:
                    break
                continue  # keep looking for more problems, store nothing
            encoded = row_line(text, label, subject)
            batch.append(encoded)
            size += len(encoded)
            if size >= BATCH_CHARS:
                yield self._flush(batch)
                size = 0
        self.finish_checks()
        if batch:
            yield self._flush(batch)

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
        if not self.check_minimums:
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
