"""`privet dev seed`: development data for benchmarks and demos (server side).

It writes into a database directly, like `privet db upgrade`, and has no HTTP route: a
gateway that can fill its own ledger with made-up traffic is not something to expose.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from privet.cli.output import group
from privet.config import get_settings
from privet.db import get_engine
from privet.devdata import seed_ledger
from privet.kit.errors import PrivetError

dev_app = group("Development tools (server side): seed a database with a year of traffic.")
_console = Console()
_errors = Console(stderr=True)


def _start(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date or time: {value!r}") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dev_app.command()
def seed(
    events: Annotated[int, typer.Option(help="How many ledger events to write.")] = 10_000,
    seed_value: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed and size, the same traffic.")
    ] = 0,
    start: Annotated[
        str, typer.Option(help="First day of the year of traffic (ISO 8601, UTC).")
    ] = "2026-01-01",
    batch: Annotated[int, typer.Option(help="Events per transaction.")] = 5_000,
    database_url: Annotated[
        str | None,
        typer.Option(help="Database to seed (default: PRIVET_DATABASE_URL / the embedded one)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Seed even a database that holds other data.")
    ] = False,
) -> None:
    """Write EVENTS events of a bank's year (predictions, decisions, jobs, DSRs, datasets)
    through the real ledger path, integrated and checkpointed, for a new project and its
    people; migrates an empty database."""
    engine = get_engine(database_url or get_settings().effective_database_url)
    columns = (
        TextColumn("seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=_errors, transient=True)
    task = bar.add_task("seeding", total=events)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    try:
        with bar:
            result = seed_ledger(
                engine=engine,
                events=events,
                seed=seed_value,
                start=_start(start),
                batch=batch,
                force=force,
                progress=advance,
            )
    except PrivetError as exc:
        _errors.print(f"[bold red]error:[/] {exc.detail}", highlight=False)
        raise typer.Exit(code=1) from exc
    _console.print(
        f"[green]ok[/] {result.events:,} events in {result.seconds:.1f}s "
        f"({result.events_per_second:,.0f}/s); tree size {result.tree_size:,}, signed "
        f"checkpoint at {result.checkpoint_size:,}; project {result.project}",
        highlight=False,
    )
    for kind, count in result.by_type.items():
        _console.print(f"  {count:>10,}  {kind}", highlight=False)
    _console.print("rows written beside them:", highlight=False)
    for table, count in result.rows.items():
        _console.print(f"  {count:>10,}  {table}", highlight=False)
