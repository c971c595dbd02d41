"""`privet reports export ...` and `privet dsr submit/list/show` (data-subject requests).

Client commands: they talk to a running server (PRIVET_URL, PRIVET_API_KEY).
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from privet.cli.client import call, call_pages, download
from privet.cli.output import (
    AfterOption,
    AllPagesOption,
    LimitOption,
    Output,
    OutputOption,
    emit,
    err,
    group,
    next_page_hint,
)
from privet.reports import FORMATS, KINDS

reports_app = group("Compliance reports: RoPA, lineage, budgets, logs, monitoring (client).")
dsr_app = group("Data-subject requests: access, erasure, objection; their reports (client).")
console = Console()


def _download(path: str, params: dict[str, Any], out: Path) -> int:
    return download(path, out, params)


@reports_app.command("export")
def export(
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}, or 'dsr' with --request.")],
    out: Annotated[Path, typer.Option(help="Where to write the report.")],
    format: Annotated[str, typer.Option(help="json, csv, html or pdf.")] = "json",
    project: Annotated[str | None, typer.Option(help="Limit to one project.")] = None,
    model_version: Annotated[
        str | None, typer.Option(help="model-lineage: the model version id.")
    ] = None,
    dataset_version: Annotated[
        str | None, typer.Option(help="privacy-budget: one dataset version.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="access-log/dsr-log: events from this time on (ISO 8601, with zone)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="access-log/dsr-log: events before this time (ISO 8601, with zone)."),
    ] = None,
    principal: Annotated[str | None, typer.Option(help="access-log: one principal id.")] = None,
    action: Annotated[str | None, typer.Option(help="access-log: one action.")] = None,
    outcome: Annotated[str | None, typer.Option(help="access-log: allow or deny.")] = None,
    request: Annotated[str | None, typer.Option(help="dsr: the request id.")] = None,
) -> None:
    """Export a report. Verify a JSON report offline with `privet-audit verify-report`."""
    if format not in FORMATS:
        err.print(f"[red]error:[/] --format must be one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    if kind == "dsr":
        if not request:
            err.print("[red]error:[/] --kind dsr needs --request <id>")
            raise typer.Exit(2)
        total = _download(f"/v1/data-subject-requests/{request}/report", {"format": format}, out)
    else:
        if kind not in KINDS:
            err.print(f"[red]error:[/] --kind must be one of {', '.join(KINDS)} or dsr")
            raise typer.Exit(2)
        params = {
            "format": format,
            "project": project,
            "model_version": model_version,
            "dataset_version": dataset_version,
            "since": since,
            "until": until,
            "principal": principal,
            "action": action,
            "outcome": outcome,
        }
        total = _download(
            f"/v1/reports/{kind}", {k: v for k, v in params.items() if v is not None}, out
        )
    digest = _sha256(out)
    console.print(f"wrote {out} ({total} bytes, {digest}; the ledger's report.issued names it)")


def _sha256(path: Path) -> str:
    """The file's digest as the server records it in ``report.issued``."""
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return "sha256:" + sha.hexdigest()


@dsr_app.command("submit")
def submit(
    type: Annotated[str, typer.Option(help="access, erasure or objection.")],
    subject_id: Annotated[str, typer.Option(help="The subject's id as the datasets hold it.")],
    regime: Annotated[str, typer.Option(help="gdpr or ccpa (sets the deadlines).")] = "gdpr",
    requester: Annotated[str, typer.Option(help="Who asked (kept sealed).")] = "data subject",
    channel: Annotated[
        str,
        typer.Option(
            help="How it was received: email, web_form, letter, phone, in_person, api or other."
        ),
    ] = "other",
    received: Annotated[
        str | None, typer.Option(help="Date received, YYYY-MM-DD (default today).")
    ] = None,
    purpose: Annotated[
        list[str] | None, typer.Option(help="objection: a purpose objected to (repeatable).")
    ] = None,
) -> None:
    """Log a request and carry it out across every project (erasure cannot be undone)."""
    body: dict[str, Any] = {
        "type": type,
        "subject_id": subject_id,
        "regime": regime,
        "requester": requester,
        "channel": channel,
        "purposes": purpose or [],
    }
    if received:
        body["received_date"] = date.fromisoformat(received).isoformat()
    row = call("POST", "/v1/data-subject-requests", json=body)
    console.print(
        f"[green]{row['id']}[/] {row['type']} ({row['regime']}): {row['state']}, "
        f"due {row['due_at']}"
    )
    if row.get("outcome"):
        console.print(row["outcome"])


@dsr_app.command("list")
def list_requests(
    type: Annotated[str | None, typer.Option(help="access, erasure or objection.")] = None,
    state: Annotated[str | None, typer.Option(help="received, acknowledged, completed.")] = None,
    after: AfterOption = None,
    limit: LimitOption = 100,
    all_pages: AllPagesOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    output: OutputOption = None,
) -> None:
    """The request log, newest first (one page, or --all)."""
    wanted = {"type": type, "state": state, "after": after, "limit": limit}
    params = {k: v for k, v in wanted.items() if v}
    rows, cursor = call_pages("/v1/data-subject-requests", params, all_pages=all_pages)
    emit(rows, Output.json if as_json else output, render=_render_requests)
    next_page_hint(cursor)


def _render_requests(rows: list[dict[str, Any]]) -> None:
    table = Table("type", "regime", "received", "due", "state", "on time")
    table.columns.insert(0, Table("id").columns[0])
    table.columns[0].no_wrap = True
    for r in rows:
        on_time = "" if r["on_time"] is None else ("yes" if r["on_time"] else "LATE")
        table.add_row(
            r["id"],
            r["type"],
            r["regime"],
            r["received_at"][:10],
            r["due_at"][:10],
            r["state"],
            on_time,
        )
    console.print(table)


@dsr_app.command("show")
def show(request_id: str, output: OutputOption = None) -> None:
    """One request: dates, deadlines, outcome and result (no subject id)."""
    emit(call("GET", f"/v1/data-subject-requests/{request_id}"), output)


@dsr_app.command("report")
def report(
    request_id: str,
    out: Annotated[Path, typer.Option(help="Where to write the report.")],
    format: Annotated[str, typer.Option(help="json, csv, html or pdf.")] = "pdf",
) -> None:
    """Download the answer to a request (for access: what the platform holds about the
    subject), to send to them."""
    if format not in FORMATS:
        err.print(f"[red]error:[/] --format must be one of {', '.join(FORMATS)}")
        raise typer.Exit(2)
    total = download(f"/v1/data-subject-requests/{request_id}/report", out, {"format": format})
    console.print(f"wrote {out} ({total} bytes)")
