"""`privet audit verify|export|checkpoint|events|proof|consistency`: the audit ledger.

verify, export and checkpoint read this host's database (server side), or the server's
HTTP API with --remote; events, proof and consistency are client commands.

`verify` checks the live database the way `privet-audit verify BUNDLE` checks an
exported bundle, and exits non-zero naming the first bad entry. Keep the note printed by
`checkpoint` (or returned by GET /v1/audit/checkpoint) somewhere the database
administrator cannot reach, and pass it back with --trusted-checkpoint: that is what
detects a rollback, a truncation or a rewritten log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from privet.cli.client import call, download
from privet.cli.output import Column, OutputOption, console, emit, group, table, write_json
from privet.config import get_settings
from privet.db import get_engine, session_scope
from privet.kit.errors import PrivetError
from privet.ledger.export import export_bundle
from privet.ledger.queries import CheckpointPublic, get_checkpoint
from privet.ledger.sequencer import integrate_now
from privet.ledger.verify import LedgerVerifyReport, verify_ledger

audit_app = group(
    "Audit ledger: verify, export, checkpoint (here or --remote), events and proofs (client)."
)
_console = Console()
_errors = Console(stderr=True)


RemoteOption = Annotated[
    bool,
    typer.Option("--remote", help="Over HTTP from the signed-in server, not this host's database."),
]


def _engine() -> Engine:
    return get_engine(get_settings().effective_database_url)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_errors,
        transient=True,
    )


@audit_app.command()
def verify(
    trusted_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--trusted-checkpoint",
            help="A signed checkpoint note kept from earlier; the log must extend it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="The log's verifier key (C2SP vkey string or a file holding it); "
            "default: derived from the local signing key.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    remote: RemoteOption = False,
) -> None:
    """Verify every entry, leaf hash, node, checkpoint signature and root in the database
    (with --remote: ask the server to; an auditor who distrusts it verifies an export)."""
    if remote:
        report = LedgerVerifyReport.model_validate(call("POST", "/v1/audit:verify"))
        _print_verify(report, as_json)
        return
    engine = _engine()
    note = trusted_checkpoint.read_text("utf-8") if trusted_checkpoint else None
    with _progress() as bar, session_scope(engine) as session:
        task = bar.add_task("verifying entries", total=None)
        report = verify_ledger(
            session=session,
            trusted_checkpoint=note,
            key=key,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_verify(report, as_json)


def _print_verify(report: LedgerVerifyReport, as_json: bool) -> None:
    if as_json:
        write_json(report.model_dump(mode="json"))
    elif report.ok:
        _console.print(f"[green]{report.message}[/]", highlight=False)
    else:
        _errors.print(f"[bold red]FAILED:[/] {report.message}", highlight=False)
    if not report.ok:
        raise typer.Exit(code=1)


@audit_app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="Bundle file to write.", dir_okay=False)],
    integrate: Annotated[
        bool,
        typer.Option(help="Integrate pending entries and sign a checkpoint first."),
    ] = True,
    remote: RemoteOption = False,
) -> None:
    """Write an offline-verifiable bundle: all events, all checkpoints, the public key."""
    if remote:
        total = download("/v1/audit/export", out)
        _console.print(f"[green]ok[/] {total} bytes -> {out}", highlight=False)
        return
    engine = _engine()
    if integrate:
        integrate_now(engine)
    try:
        with _progress() as bar, session_scope(engine) as session:
            task = bar.add_task("exporting entries", total=None)
            result = export_bundle(
                session=session,
                out=out,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except PrivetError as exc:
        _errors.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(code=1) from exc
    _console.print(
        f"[green]ok[/] {result.tree_size} entries, {result.checkpoints} checkpoints, "
        f"{result.bytes} bytes -> {result.path}\nverifier key: {result.verifier_key}",
        highlight=False,
    )


@audit_app.command()
def checkpoint(
    integrate: Annotated[
        bool,
        typer.Option(help="Integrate pending entries and sign a checkpoint first."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    remote: RemoteOption = False,
) -> None:
    """Print the latest signed checkpoint (keep it to verify the log later)."""
    if remote:
        cp = CheckpointPublic.model_validate(call("GET", "/v1/audit/checkpoint"))
        print(json.dumps(cp.model_dump(mode="json"), indent=2) if as_json else cp.note, end="")
        return
    engine = _engine()
    if integrate:
        integrate_now(engine)
    try:
        with session_scope(engine) as session:
            cp = get_checkpoint(session=session)
    except PrivetError as exc:
        _errors.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(code=1) from exc
    if as_json:
        print(json.dumps(cp.model_dump(mode="json"), indent=2))
    else:
        print(cp.note, end="")


EVENT_COLUMNS: list[Column | str] = [
    "index",
    Column("event.time", "time"),
    Column("event.type", "type"),
    Column("event.actor", "actor"),
    Column("event.project", "project"),
    Column("event.outcome", "outcome"),
    Column("event.objects", "objects"),
]


@audit_app.command()
def events(
    type: Annotated[str | None, typer.Option(help="Only this event type.")] = None,
    object_id: Annotated[str | None, typer.Option(help="Only events naming this object.")] = None,
    project: Annotated[str | None, typer.Option(help="Only this project's events.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this principal's events.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO 8601).")] = None,
    start: Annotated[int, typer.Option(help="First leaf index of the page.")] = 0,
    limit: Annotated[int, typer.Option(help="Events per page.")] = 100,
    all_pages: Annotated[
        bool, typer.Option("--all", help="Follow next_start to the end of the log.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Integrated audit events in log order, filtered; one page, or --all of them."""
    params: dict[str, Any] = {
        k: v
        for k, v in {
            "type": type,
            "object_id": object_id,
            "project": project,
            "actor": actor,
            "since": since,
            "until": until,
        }.items()
        if v is not None
    }
    page = call("GET", "/v1/audit/events", params={**params, "start": start, "limit": limit})
    items = list(page["items"])
    while all_pages and page["next_start"] is not None:
        page = call(
            "GET",
            "/v1/audit/events",
            params={**params, "start": page["next_start"], "limit": limit},
        )
        items += page["items"]
    result = {"items": items, "tree_size": page["tree_size"], "next_start": page["next_start"]}

    def render(view: dict[str, Any]) -> None:
        console.print(table(view["items"], EVENT_COLUMNS))
        more = (
            f"; next page: --start {view['next_start']}" if view["next_start"] is not None else ""
        )
        console.print(f"{len(view['items'])} event(s) of a log of {view['tree_size']}{more}")

    emit(result, output, render=render)


@audit_app.command()
def proof(
    index: Annotated[int | None, typer.Argument(help="Leaf index of the event.")] = None,
    entry_id: Annotated[int | None, typer.Option(help="Or the event's entry id.")] = None,
    tree_size: Annotated[
        int | None, typer.Option(help="Tree to prove against (default: the latest).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """An event's inclusion proof (audit path, root and the signed checkpoint)."""
    if (index is None) == (entry_id is None):
        raise typer.BadParameter("give an INDEX or --entry-id")
    params = {
        k: v
        for k, v in {"index": index, "entry_id": entry_id, "tree_size": tree_size}.items()
        if v is not None
    }
    emit(call("GET", "/v1/audit/proofs/inclusion", params=params), output)


@audit_app.command()
def consistency(
    size1: Annotated[int, typer.Argument(help="The older tree size (a kept checkpoint's).")],
    size2: Annotated[int | None, typer.Argument(help="The newer one (default: latest).")] = None,
    output: OutputOption = None,
) -> None:
    """Proof that the log of SIZE2 extends the log of SIZE1 (nothing rewritten)."""
    params = {"size1": size1, **({"size2": size2} if size2 is not None else {})}
    emit(call("GET", "/v1/audit/proofs/consistency", params=params), output)
