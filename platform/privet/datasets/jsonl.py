"""JSON Lines reader: one JSON object per line, UTF-8; blank lines are skipped.

Each line is parsed on its own, so a bad line is one ``RowError`` and never stops the
file; keys must be exactly the declared columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from privet.datasets.items import Columns, Item, RowError, scalar
from privet.datasets.limits import check_row, resolve
from privet.datasets.lines import BOM, physical_lines
from privet.datasets.schemas import Declarations
from privet.datasets.settings import DatasetSettings


def read_jsonl(
    chunks: Iterable[bytes], decl: Declarations, limits: DatasetSettings | None = None
) -> Iterator[Item]:
    """JSON Lines rows in file order, one ``RowError`` per unreadable line."""
    lim = resolve(limits)
    cols = Columns(decl)
    expected = set(cols.expected)
    for number, raw in enumerate(physical_lines(chunks, lim), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield RowError(number, "not valid UTF-8")
            continue
        if number == 1 and line.startswith(BOM):
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
            label = scalar(obj[cols.label], repr(cols.label)) if cols.label else None
            subject = scalar(obj[cols.subject], repr(cols.subject)) if cols.subject else None
            if "\\u" in line:  # an escape may hide a lone surrogate: not encodable
                for value in (text, label or "", subject or ""):
                    value.encode("utf-8")
        except UnicodeEncodeError:
            yield RowError(number, "holds a lone surrogate escape: not valid Unicode text")
            continue
        except ValueError as exc:
            yield RowError(number, str(exc))
            continue
        row = (number, text, label, subject)
        check_row(lim, row)
        yield row
