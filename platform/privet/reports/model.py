"""The shape every report has, whatever its kind: facts, tables, charts, notes, evidence.

The JSON form is the report of record (it carries the ledger evidence that
``privet-audit verify-report`` checks); CSV, HTML and PDF are renderings of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from privet.kit.ids import utcnow

FORMAT_VERSION = 1

Lazy = Callable[[Iterable[Any]], Any]
"""What becomes of a long list when a report is turned into JSON: ``list`` (the whole
report in memory) or a marker the streaming renderer fills in (render.py)."""


class Rows:
    """A table's rows read again each time they are iterated (``count`` known from the
    builder's first pass), so a report of a million rows is never held in memory.
    ``ready``: each row is already what ``Table.to_json`` makes of it (the table's columns,
    in order, JSON-ready values), so it is passed on as it is."""

    def __init__(
        self, produce: Callable[[], Iterator[dict[str, Any]]], count: int, *, ready: bool = False
    ) -> None:
        self._produce, self.count, self.ready = produce, count, ready

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._produce()

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class Table:
    name: str
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[dict[str, Any]] | Rows = field(default_factory=list)
    intro: str = ""
    empty: str = "None."

    def to_json(self, lazy: Lazy = list) -> dict[str, Any]:
        rows = ({k: plain(r.get(k)) for k, _l in self.columns} for r in self.rows)
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": k, "label": label} for k, label in self.columns],
            "rows": lazy(self.rows if isinstance(self.rows, Rows) and self.rows.ready else rows),
        }


@dataclass
class Chart:
    title: str
    svg: str
    caption: str = ""


@dataclass
class Report:
    kind: str
    title: str
    generated_at: datetime
    generated_by: str
    parameters: dict[str, Any]
    intro: str = ""
    facts: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def range(self) -> dict[str, Any]:
        """What the report covers: first/last cited ledger index, the checkpoint's tree
        size and the time window (see ``evidence.Evidence.coverage``)."""
        empty = dict.fromkeys(("tree_size", "first_index", "last_index", "since", "until"))
        return {**empty, **(self.ledger.get("range") or {})}

    @property
    def row_count(self) -> int:
        return sum(len(t.rows) for t in self.tables)

    def to_json(self, lazy: Lazy = list) -> dict[str, Any]:
        """The report of record; ``lazy`` decides what becomes of the table rows and the
        cited events (default: lists)."""
        ledger = dict(self.ledger)
        if "events" in ledger:
            ledger["events"] = lazy(ledger["events"])
        return {
            "report": {
                "kind": self.kind,
                "title": self.title,
                "format_version": FORMAT_VERSION,
                "generated_at": self.generated_at.isoformat(),
                "generated_by": self.generated_by,
                "parameters": plain(self.parameters),
                "range": self.range,
            },
            "summary": {label: plain(value) for label, value in self.facts},
            "data": plain(self.data),
            "tables": [t.to_json(lazy) for t in self.tables],
            "notes": list(self.notes),
            "ledger": ledger,
        }


def new_report(kind: str, title: str, *, actor: str, params: dict[str, Any]) -> Report:
    """An empty report of ``kind``, stamped now; parameters left unset are not listed."""
    return Report(
        kind=kind,
        title=title,
        generated_at=utcnow(),
        generated_by=actor,
        parameters={k: v for k, v in params.items() if v is not None},
    )


def plain(value: Any) -> Any:
    """JSON-ready values: datetimes as ISO 8601, sets as sorted lists."""
    if isinstance(value, str | int | float | None):  # most cells: as they are
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    return value


def cell(value: Any) -> str:
    """A value as readers see it in a table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return str(value)
