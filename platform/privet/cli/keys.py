"""`privet keys rotate|retire|status`: master key rotation without re-encrypting data;
`privet keys show`: the server's master-key health over the API (a client command).

Rotation creates a new master key version and rewraps every data key under it; blobs are
untouched. Retiring an old version then destroys it, which also makes the wrapped keys in
old database backups unopenable (the last step of crypto-shredding). The server commands
run where the keys are; `show` works from anywhere, for admins and auditors.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import Engine

from privet import crypto
from privet.cli.client import call
from privet.cli.output import OutputOption, emit, group, table
from privet.config import get_settings
from privet.db import get_engine, session_scope
from privet.kit.errors import PrivetError

keys_app = group(
    "Master keys: rotate, retire old versions, show which objects use which version (server "
    "side); `show` the server's master key over the API. API keys: `privet api-keys`."
)
_console = Console()
_errors = Console(stderr=True)


def _fail(exc: PrivetError) -> typer.Exit:
    _errors.print(f"[bold red]error:[/] {exc.detail}", markup=True, highlight=False)
    for name, value in exc.extensions.items():
        if isinstance(value, list):
            for item in value:
                _errors.print(f"  {item}", markup=False, highlight=False)
        else:
            _errors.print(f"  {name}: {value}", markup=False, highlight=False)
    return typer.Exit(code=1)


def _runtime() -> tuple[crypto.KeyProvider, Engine]:
    settings = get_settings()
    return crypto.key_provider_from_settings(settings), get_engine(settings.effective_database_url)


def _print_report(report: crypto.RewrapReport) -> int:
    _console.print(
        f"[green]ok[/] master key {report.kek_id} version {report.to_version}: "
        f"{report.rewrapped} data key(s) rewrapped, {report.already_current} already current",
        highlight=False,
    )
    for failure in report.failed:
        _errors.print(
            f"[yellow]not rewrapped[/] {failure.ref.kind}/{failure.ref.object_id}"
            f"@{failure.ref.project_id} (v{failure.kek_version}): {failure.reason}",
            highlight=False,
        )
    return 1 if report.failed else 0


@keys_app.command()
def rotate(
    rewrap_only: Annotated[
        bool,
        typer.Option(
            "--rewrap-only",
            help="Do not create a version; rewrap stragglers under the current one "
            "(resume an interrupted rotation).",
        ),
    ] = False,
) -> None:
    """Create a new master key version and rewrap every data key under it."""
    try:
        provider, engine = _runtime()
        with (
            session_scope(engine) as session,
            Progress(
                TextColumn("rewrapping data keys"),
                BarColumn(),
                MofNCompleteColumn(),
                console=_console,
                transient=True,
            ) as bar,
        ):
            task = bar.add_task("rewrap", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if rewrap_only:
                report = crypto.rewrap(session=session, provider=provider, progress=progress)
            else:
                report = crypto.rotate(session=session, provider=provider, progress=progress)
    except PrivetError as exc:
        raise _fail(exc) from exc
    raise typer.Exit(code=_print_report(report))


@keys_app.command()
def retire(
    version: Annotated[int, typer.Argument(help="Master key version to destroy.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Retire even if data keys still use it (they are lost)."),
    ] = False,
) -> None:
    """Destroy an old master key version; refused while data keys still use it."""
    try:
        provider, engine = _runtime()
        with session_scope(engine) as session:
            report = crypto.retire(session=session, provider=provider, version=version, force=force)
    except PrivetError as exc:
        raise _fail(exc) from exc
    _console.print(f"[green]ok[/] master key version {report.version} retired", highlight=False)
    if report.unreadable_count:
        _errors.print(
            f"[bold red]{report.unreadable_count} object(s) are now unreadable:[/]",
            highlight=False,
        )
        for ref in report.unreadable:
            _errors.print(f"  {ref.kind}/{ref.object_id}@{ref.project_id}", highlight=False)


@keys_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    objects: Annotated[
        bool, typer.Option("--objects", help="List the objects under each version.")
    ] = False,
) -> None:
    """Show master key versions and which objects' data keys each one wraps."""
    try:
        provider, engine = _runtime()
        with session_scope(engine) as session:
            state = crypto.key_status(session=session, provider=provider)
    except PrivetError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(state), indent=2, default=str))
    else:
        _console.print(
            f"master key [bold]{state.kek_id}[/], current version {state.current_version}; "
            f"{state.destroyed} data key(s) shredded",
            highlight=False,
        )
        table = Table("version", "state", "data keys", *(["objects"] if objects else []))
        for usage in state.versions:
            row = [str(usage.version), usage.state, str(usage.data_keys)]
            if objects:
                row.append(
                    "\n".join(f"{r.kind}/{r.object_id}@{r.project_id}" for r in usage.objects)
                )
            table.add_row(*row)
        _console.print(table)
        for kek_id, count in state.foreign_keks.items():
            _errors.print(
                f"[yellow]{count} data key(s) wrapped by another master key {kek_id}[/]",
                highlight=False,
            )
        for item in state.unreadable:
            _errors.print(
                f"[bold red]unreadable[/] {item.ref.kind}/{item.ref.object_id}"
                f"@{item.ref.project_id}: {item.reason}",
                highlight=False,
            )
    if state.unreadable:
        raise typer.Exit(code=1)


@keys_app.command()
def show(output: OutputOption = None) -> None:
    """The server's master key over the API (admins, auditors): provider, key id, current
    version, created and rotated dates, and whether it wraps and unwraps right now."""
    health = call("GET", "/v1/admin/master-key")

    def render(data: dict[str, Any]) -> None:
        state = "[green]reachable[/]" if data["reachable"] else "[bold red]UNREACHABLE[/]"
        _console.print(
            f"master key [bold]{data['key_id']}[/] ({data['provider']}), current version "
            f"{data['current_version']}: {state}",
            highlight=False,
        )
        _console.print(
            f"created {data['created_at'] or 'unknown'}, rotated {data['rotated_at'] or 'never'}",
            highlight=False,
        )
        if data["problem"]:
            _errors.print(data["problem"], markup=False, highlight=False)
        _console.print(table(data["versions"], ["version", "state", "created_at", "retired_at"]))

    emit(health, output, render=render)
    if not health["reachable"]:
        raise typer.Exit(code=1)
