"""The shape every report has, whatever its kind: facts, tables, charts, notes, evidence.

The JSON form is the report of record (it carries the ledger evidence that
``privet-audit verify-report`` checks); CSV, HTML and PDF are renderings of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from privet.kit.ids import utcnow

FORMAT_VERSION = 1


@dataclass
class Table:
    name: str
    title: str
    columns: list[tuple[str, str]]  # (key, label)
    rows: list[dict[str, Any]] = field(default_factory=list)
    intro: str = ""
    empty: str = "None."

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "columns": [{"key": k, "label": label} for k, label in self.columns],
            "rows": [{k: plain(r.get(k)) for k, _l in self.columns} for r in self.rows],
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

    def to_json(self) -> dict[str, Any]:
        return {
            "report": {
                "kind": self.kind,
                "title": self.title,
                "format_version": FORMAT_VERSION,
                "generated_at": self.generated_at.isoformat(),
                "generated_by": self.generated_by,
                "parameters": plain(self.parameters),
            },
            "summary": {label: plain(value) for label, value in self.facts},
            "data": plain(self.data),
            "tables": [t.to_json() for t in self.tables],
            "notes": list(self.notes),
            "ledger": self.ledger,
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
