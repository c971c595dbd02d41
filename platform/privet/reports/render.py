"""Render a report as JSON, CSV, HTML or PDF (the PDF is the HTML, printed by WeasyPrint)."""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from privet.kit.errors import PrivetError
from privet.reports.model import Report, cell

Format = Literal["json", "csv", "html", "pdf"]
FORMATS: tuple[str, ...] = ("json", "csv", "html", "pdf")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}
TEMPLATES = Path(__file__).parent / "templates"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class RendererUnavailableError(PrivetError):
    status = 503
    slug = "renderer-unavailable"
    title = "Report renderer unavailable"


def neutralise(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_json(report: Report) -> bytes:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False).encode("utf-8")


def to_csv(report: Report) -> bytes:
    """One table of rows: `table` names the report table a row belongs to; the other
    columns are the union of every table's columns (blank where they do not apply).
    Summary facts come first as rows of table `summary` (field, value)."""
    columns: list[tuple[str, str]] = [("field", "field"), ("value", "value")]
    seen = {"field", "value"}
    for table in report.tables:
        for key, label in table.columns:
            if key not in seen:
                seen.add(key)
                columns.append((key, label))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["table"] + [label for _k, label in columns])
    index = {key: i for i, (key, _l) in enumerate(columns)}

    def emit(table: str, values: dict[str, object]) -> None:
        row = [""] * len(columns)
        for key, value in values.items():
            row[index[key]] = neutralise(cell(value))
        writer.writerow([table, *row])

    emit("report", {"field": "kind", "value": report.kind})
    emit("report", {"field": "generated_at", "value": report.generated_at})
    emit("report", {"field": "ledger_tree_size", "value": report.ledger.get("tree_size")})
    emit("report", {"field": "ledger_root_hash", "value": report.ledger.get("root_hash")})
    for label, value in report.facts:
        emit("summary", {"field": label, "value": value})
    for table in report.tables:
        for row in table.rows:
            emit(table.name, {k: row.get(k) for k, _l in table.columns})
    return out.getvalue().encode("utf-8")


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cell"] = cell
    return env


def to_html(report: Report) -> str:
    template = _env().get_template(f"{report.kind}.html")
    return template.render(
        r=report,
        charts=[(c.title, Markup(c.svg), c.caption) for c in report.charts],  # noqa: S704 - built and escaped by charts.py
    )


def to_pdf(report: Report, html: str | None = None) -> bytes:
    try:
        from weasyprint import HTML
    except ImportError as exc:  # pragma: no cover - weasyprint is a dependency
        raise RendererUnavailableError(
            "PDF rendering needs WeasyPrint (pip install weasyprint); use format=html"
        ) from exc
    pdf: bytes = HTML(string=html or to_html(report), base_url=str(TEMPLATES)).write_pdf()
    return pdf


def render(report: Report, fmt: str) -> bytes:
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(report)
    raise ValueError(f"unknown format {fmt!r}")


def filename(report: Report, fmt: str) -> str:
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    return f"privet-{report.kind}-{stamp}.{fmt}"
