"""What the format readers yield, and the declared columns they check a header against.

Shared by every reader (``delimited``, ``jsonl``, ``parquet``) and by ``ingest``, which
consumes the items; kept apart so the readers and the consumer agree on one shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from privet.datasets.schemas import Declarations
from privet.kit.errors import InvalidInputError

Row = tuple[int, str, str | None, str | None]
"""(line, text, label, subject id): the label is None in an unlabelled upload."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot be read: reported with its line, the file goes on."""

    line: int
    problem: str


@dataclass(slots=True)
class Batch:
    """Consecutive well-formed rows starting at line `start` (one line each), as columns:
    the fast path, processed by Ingest with C-level operations."""

    start: int
    texts: list[str]
    labels: list[str] | None
    subjects: list[str] | None

    def rows(self) -> Iterator[Row]:
        none: list[None] = [None] * len(self.texts)
        labels = self.labels if self.labels is not None else none
        subjects = self.subjects if self.subjects is not None else none
        for i, (t, label, subj) in enumerate(zip(self.texts, labels, subjects, strict=True)):
            yield (self.start + i, t, label, subj)


Item = Row | RowError | Batch
BATCH_ROWS = 1024


class Columns:
    """The declared text, label and subject-id columns; a file must have exactly these
    (an unlabelled upload declares no label column)."""

    def __init__(self, decl: Declarations) -> None:
        self.text = decl.text_column
        self.label = decl.label_column
        self.subject = decl.subject_id_column
        named = (("text", self.text), ("label", self.label), ("subject id", self.subject))
        self.roles = [(role, c) for role, c in named if c is not None]
        """(role, column) of each declared column, in the order readers select them."""
        self.expected = [c for _, c in self.roles]

    def positions(self, header: list[str]) -> tuple[int, int | None, int | None]:
        """Where the text, label and subject-id columns are in a checked header (None:
        not declared)."""
        label = header.index(self.label) if self.label is not None else None
        subject = header.index(self.subject) if self.subject is not None else None
        return header.index(self.text), label, subject

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


def scalar(value: Any, what: str) -> str:
    """A label or subject id as text: JSON and Parquet may hold integers."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"{what} must be a string or an integer, not {type(value).__name__}")
