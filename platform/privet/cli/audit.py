"""`privet audit verify|export|checkpoint`: check and export the live audit ledger.

`verify` checks the live database the way `privet-audit verify BUNDLE` checks an
exported bundle, and exits non-zero naming the first bad entry. Keep the note printed by
`checkpoint` (or returned by GET /v1/audit/checkpoint) somewhere the database
administrator cannot reach, and pass it back with --trusted-checkpoint: that is what
detects a rollback, a truncation or a rewritten log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from privet.config import get_settings
from privet.db import get_engine, session_scope
from privet.kit.errors import PrivetError
from privet.ledger import service
from privet.ledger.sequencer import integrate_now

audit_app = typer.Typer(
    help="Audit ledger: verify the live log, export a bundle, print the latest checkpoint.",
    no_args_is_help=True,
)
_console = Console()
_errors = Console(stderr=True)


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
) -> None:
    """Verify every entry, leaf hash, node, checkpoint signature and root in the database."""
    engine = _engine()
    note = trusted_checkpoint.read_text("utf-8") if trusted_checkpoint else None
    with _progress() as bar, session_scope(engine) as session:
        task = bar.add_task("verifying entries", total=None)
        report = service.verify_ledger(
            session=session,
            trusted_checkpoint=note,
            key=key,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        _console.print_json(report.model_dump_json())
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
) -> None:
    """Write an offline-verifiable bundle: all events, all checkpoints, the public key."""
    engine = _engine()
    if integrate:
        integrate_now(engine)
    try:
        with _progress() as bar, session_scope(engine) as session:
            task = bar.add_task("exporting entries", total=None)
            result = service.export_bundle(
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
) -> None:
    """Print the latest signed checkpoint (keep it to verify the log later)."""
    engine = _engine()
    if integrate:
        integrate_now(engine)
    try:
        with session_scope(engine) as session:
            cp = service.get_checkpoint(session=session)
    except PrivetError as exc:
        _errors.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(code=1) from exc
    if as_json:
        print(json.dumps(cp.model_dump(mode="json"), indent=2))
    else:
        print(cp.note, end="")
