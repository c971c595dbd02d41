"""Fixtures for compliance tests: the tiny pinned BERT and workers from the jobs tests, and
checks for every report format (JSON proofs offline, CSV, strict HTML, PDF pixels)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.conftest import job_settings, make_worker, tiny_model  # noqa: F401

SUBJECT = "alice-canary-7731"
"""The data subject of the scenarios: a canary that must appear only in their own report."""
ROW_CANARY = "rowcanary zq81"
"""Inside the subject's training rows: must never appear in any report."""
INPUT_CANARY = "inputcanary pk44"
"""Inside the prediction inputs about the subject: must never appear in any report."""


def check_json(content: bytes, tmp: Path) -> dict[str, Any]:
    """Parse, and verify the ledger evidence offline with the privet-audit CLI."""
    doc = json.loads(content)
    assert doc["ledger"]["events"], "a report cites at least one event"
    path = tmp / "report.json"
    path.write_bytes(content)
    audit = Path(sys.executable).with_name("privet-audit")
    result = subprocess.run(
        [str(audit), "verify-report", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK:"), result.stdout
    return dict(doc)


def check_csv(content: bytes) -> list[dict[str, str]]:
    text = content.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows and "table" in rows[0]
    for row in rows:
        for value in row.values():
            assert not (value or "").startswith(("=", "+", "-", "@")), value
    return rows


def check_html(content: bytes) -> str:
    """Strict HTML5 parse (html5lib raises on any parse error) plus basic structure."""
    import html5lib

    text = content.decode("utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    tree = parser.parse(text)
    assert tree.find(".//title") is not None and tree.find(".//h1") is not None
    return text


def check_pdf(content: bytes, tmp: Path) -> str:
    """Render page 1 to PNG with pdftoppm, check it is not blank; return the PDF's text."""
    assert content.startswith(b"%PDF")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    pdf = tmp / "report.pdf"
    pdf.write_bytes(content)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp / "page")],
        check=True,
        timeout=60,
    )
    png = sorted(tmp.glob("page*.png"))[0]
    from PIL import Image

    with Image.open(png) as image:
        gray = image.convert("L")
        lo, hi = gray.getextrema()
        dark = sum(gray.histogram()[:128])
    assert lo < 100 and hi > 200 and dark > 50, "page 1 is blank"
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    png.unlink()
    return text


@pytest.fixture
def check_report(tmp_path: Path):  # type: ignore[no-untyped-def]
    """check_report(client, headers, path, **params) → {format: text or parsed JSON}."""
    counter = iter(range(10_000))

    def check(client: Any, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fmt in ("json", "csv", "html", "pdf"):
            work = tmp_path / f"r{next(counter)}"
            work.mkdir()
            r = client.get(path, params={**params, "format": fmt}, headers=headers)
            assert r.status_code == 200, (path, fmt, r.text[:500])
            if fmt == "json":
                out["json"] = check_json(r.content, work)
                out["json_text"] = r.text
            elif fmt == "csv":
                out["csv"] = check_csv(r.content)
                out["csv_text"] = r.text
            elif fmt == "html":
                out["html"] = check_html(r.content)
            else:
                out["pdf"] = check_pdf(r.content, work)
        return out

    return check
