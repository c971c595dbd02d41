"""The one output formatter of the client commands: `--output table|json|yaml`.

A table for people (numbers rounded, times to the second), exact JSON or YAML for scripts.
Without `--output`, a terminal gets the table and a pipe or file gets JSON, so
`privet ... | jq` works without a flag. Machine-readable output is written straight to
stdout, never through Rich: no wrapping, no colour codes, valid at any terminal width.

Every command group is made with `group()`, which also sets the help style: plain Click
help (whole option names at any width, docstrings re-flowed, never cut with `…`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)  # errors and instructions for people: stdout stays for results


def group(help: str) -> typer.Typer:
    """A command group with the CLI's help settings."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


class Output(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="table, json or yaml (default: table on a terminal, else json).",
        case_sensitive=False,
    ),
]


AfterOption = Annotated[
    str | None,
    typer.Option("--after", help="Start after this cursor (printed under the previous page)."),
]
LimitOption = Annotated[int, typer.Option("--limit", help="Rows per page (1 to 1000).")]
AllPagesOption = Annotated[
    bool, typer.Option("--all", help="Follow the pages to the end of the list.")
]


def next_page_hint(cursor: str | None) -> None:
    """Say how to ask for the next page (on stderr: stdout stays parseable)."""
    if cursor:
        err.print(f"more: --after {cursor}", highlight=False, markup=False)


QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the new object's id or secret (scripts)."),
]


def resolve(output: Output | None) -> Output:
    """The format asked for, else a table on a terminal and JSON anywhere else."""
    if output is not None:
        return output
    return Output.table if sys.stdout.isatty() else Output.json


@dataclass(frozen=True)
class Column:
    key: str  # dotted path into the row: "privacy.epsilon"
    header: str | None = None
    fmt: Callable[[Any], str] | None = None


Columns = Sequence[Column | str]


def dig(row: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict):
            return None
        row = row.get(part)
    return row


def human(value: Any) -> str:
    """A value as a person reads it: floats to 4 significant digits, times to the second."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        return value[:19].replace("T", " ")  # ISO time from the API, to the second
    if isinstance(value, dict | list):
        return json.dumps(_rounded(value), ensure_ascii=False)
    return str(value)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def write_yaml(data: Any) -> None:
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=math.inf))
    sys.stdout.flush()


def table(rows: Sequence[dict[str, Any]], columns: Columns, *, title: str | None = None) -> Table:
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    out = Table(*(c.header or c.key.rsplit(".", 1)[-1] for c in cols), title=title)
    for row in rows:
        out.add_row(*((c.fmt or human)(dig(row, c.key)) for c in cols))
    return out


def fields(record: dict[str, Any], *, title: str | None = None) -> Table:
    """One record as a two-column field/value table."""
    out = Table("field", "value", title=title, show_header=False)
    for key, value in record.items():
        out.add_row(key, human(value))
    return out


def emit(
    data: Any,
    output: Output | None,
    *,
    columns: Columns | None = None,
    render: Callable[[Any], None] | None = None,
    title: str | None = None,
    quiet: str | None = None,
) -> None:
    """Print `data` (a list of rows or one record) in the chosen format.

    `render` draws the human view itself; otherwise a list becomes a table of `columns`
    (default: every key of the first row) and a record a field/value table. `quiet` (the
    value of a command's --quiet, when given) is printed alone instead."""
    if quiet is not None:  # --quiet: the one value a script captures
        sys.stdout.write(f"{quiet}\n")
        return
    chosen = resolve(output)
    if chosen is Output.json:
        write_json(data)
    elif chosen is Output.yaml:
        write_yaml(data)
    elif render is not None:
        render(data)
    elif isinstance(data, list):
        if not data:
            console.print("(none)")
            return
        console.print(table(data, columns or list(data[0]), title=title))
    elif isinstance(data, dict):
        console.print(fields(data, title=title))
    else:
        console.print(human(data))
