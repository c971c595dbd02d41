"""Render a report as JSON, CSV, HTML or PDF (the PDF is the HTML, printed by WeasyPrint)."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from privet.compliance.settings import get_compliance_settings
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
#: Bytes gathered before a chunk of a streamed report is handed on.
CHUNK_BYTES = 64 * 1024
#: ``json.dumps(item, ensure_ascii=False)`` without building an encoder per item.
_dump_item = json.JSONEncoder(ensure_ascii=False).encode


class RendererUnavailableError(PrivetError):
    status = 503
    slug = "renderer-unavailable"
    title = "Report renderer unavailable"


class ReportTooLargeError(PrivetError):
    status = 422
    slug = "report-too-large"
    title = "Report too large for this format"


def check_format(report: Report, fmt: str) -> None:
    """Refuse a PDF of more rows than ``max_pdf_rows``: a PDF is laid out whole in memory;
    JSON, CSV and HTML stream at any size."""
    limit = get_compliance_settings().max_pdf_rows
    if fmt == "pdf" and report.row_count > limit:
        raise ReportTooLargeError(
            f"this report has {report.row_count} rows, more than the PDF row limit of "
            f"{limit} (PRIVET_COMPLIANCE_MAX_PDF_ROWS): ask for format=csv (or json/html), "
            "which stream at any size, or narrow it with since/until",
            limit=limit,
            rows=report.row_count,
        )


def _chunks(parts: Iterable[str]) -> Iterator[bytes]:
    """Gather text into chunks of about ``CHUNK_BYTES`` encoded as UTF-8."""
    buf: list[str] = []
    size = 0
    for part in parts:
        buf.append(part)
        size += len(part)
        if size >= CHUNK_BYTES:
            yield "".join(buf).encode("utf-8")
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode("utf-8")


def neutralise(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def iter_json(report: Report) -> Iterator[bytes]:
    """The report of record, streamed: the skeleton is dumped with a marker (a fresh
    random token, so no value in the report can forge it) where each long list goes,
    and the lists are written item by item in its place."""
    token = secrets.token_hex(16)
    lazies: list[Iterable[Any]] = []

    def lazy(items: Iterable[Any]) -> str:
        lazies.append(items)
        return f"@{token}:{len(lazies) - 1}@"

    skeleton = json.dumps(report.to_json(lazy), indent=2, ensure_ascii=False)

    def parts() -> Iterator[str]:
        # split() with a group: text, marker number, text, ... in the order they appear
        pieces = re.split(f'"@{token}:([0-9]+)@"', skeleton)
        yield pieces[0]
        for number, after in zip(pieces[1::2], pieces[2::2], strict=True):
            yield "["
            for n, item in enumerate(lazies[int(number)]):
                yield ("," if n else "") + "\n" + _dump_item(item)
            yield "]" + after

    return _chunks(parts())


def to_json(report: Report) -> bytes:
    return b"".join(iter_json(report))


def iter_csv(report: Report) -> Iterator[bytes]:
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
    index = {key: i for i, (key, _l) in enumerate(columns)}

    def emit(table: str, values: dict[str, object]) -> str:
        row = [""] * len(columns)
        for key, value in values.items():
            row[index[key]] = neutralise(cell(value))
        writer.writerow([table, *row])
        line = out.getvalue()
        out.seek(0)
        out.truncate()
        return line

    def lines() -> Iterator[str]:
        writer.writerow(["table"] + [label for _k, label in columns])
        yield emit("report", {"field": "kind", "value": report.kind})
        yield emit("report", {"field": "generated_at", "value": report.generated_at})
        yield emit("report", {"field": "ledger_tree_size", "value": report.ledger.get("tree_size")})
        yield emit("report", {"field": "ledger_root_hash", "value": report.ledger.get("root_hash")})
        for key, value in report.range.items():
            yield emit("report", {"field": f"range_{key}", "value": value})
        for label, value in report.facts:
            yield emit("summary", {"field": label, "value": value})
        for table in report.tables:
            for row in table.rows:
                yield emit(table.name, {k: row.get(k) for k, _l in table.columns})

    return _chunks(lines())


def to_csv(report: Report) -> bytes:
    return b"".join(iter_csv(report))


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


def iter_html(report: Report) -> Iterator[bytes]:
    """The HTML, streamed as the template is generated (its tables' rows read lazily)."""
    template = _env().get_template(f"{report.kind}.html")
    return _chunks(
        template.generate(
            r=report,
            charts=[(c.title, Markup(c.svg), c.caption) for c in report.charts],  # noqa: S704 - built and escaped by charts.py
        )
    )


def to_html(report: Report) -> str:
    return b"".join(iter_html(report)).decode("utf-8")


def to_pdf(report: Report, html: str | None = None) -> bytes:
    try:
        from weasyprint import HTML
    except ImportError as exc:  # pragma: no cover - weasyprint is a dependency
        raise RendererUnavailableError(
            "PDF rendering needs WeasyPrint (pip install weasyprint); use format=html"
        ) from exc
    pdf: bytes = HTML(string=html or to_html(report), base_url=str(TEMPLATES)).write_pdf()
    return pdf


def iter_render(report: Report, fmt: str) -> Iterator[bytes]:
    """The report in ``fmt`` as chunks: JSON, CSV and HTML stream with bounded memory;
    a PDF is one chunk (refused above ``max_pdf_rows`` by ``check_format``)."""
    check_format(report, fmt)
    if fmt == "json":
        return iter_json(report)
    if fmt == "csv":
        return iter_csv(report)
    if fmt == "html":
        return iter_html(report)
    if fmt == "pdf":
        return iter([to_pdf(report)])
    raise ValueError(f"unknown format {fmt!r}")


def render(report: Report, fmt: str) -> bytes:
    """The whole document in memory (small reports, tests): ``iter_render`` joined."""
    return b"".join(iter_render(report, fmt))


def filename(report: Report, fmt: str) -> str:
    stamp = report.generated_at.strftime("%Y%m%dT%H%M%SZ")
    return f"privet-{report.kind}-{stamp}.{fmt}"
