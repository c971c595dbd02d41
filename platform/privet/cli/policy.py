"""`privet policy validate` and `privet policy test`: check policy changes before they ship.

validate and test work offline on a policy directory (default: the shipped ``policies/``), so a data
steward can edit a `.cedar` file and see its effect without starting the platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from privet.cli.client import call
from privet.cli.output import OutputOption, console, emit, group, table
from privet.config import get_settings
from privet.policy import PolicyEngine, PolicyLoadError, default_policy_dir, run_policy_tests

policy_app = group(
    "Cedar access policies: validate and test here; show or reload the server's (client)."
)

_console = Console()
_errors = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Policy directory (default: PRIVET_POLICY_DIR, else the shipped policies/)."
    ),
]


@policy_app.command()
def validate(
    dir: DirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every policy.")] = False,
) -> None:
    """Parse and validate every policy against the schema; print the version hash."""
    directory = dir or get_settings().policy_dir or default_policy_dir()
    try:
        engine = PolicyEngine.load(directory)
    except PolicyLoadError as exc:
        _errors.print(
            f"[bold red]invalid policies:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=1) from exc
    info = engine.info()
    _console.print(
        f"[green]ok[/] {len(info.policies)} policies in {len(info.files)} files, "
        f"version {info.version}",
        highlight=False,
        soft_wrap=True,
    )
    if verbose:
        table = Table("id", "effect", "file:line")
        for policy in info.policies:
            table.add_row(policy.id, policy.effect, f"{policy.file}:{policy.line}")
        _console.print(table)


@policy_app.command()
def test(
    dir: DirOption = None,
    tests_dir: Annotated[
        Path | None,
        typer.Option("--tests-dir", help="Test cases directory (default: <dir>/tests)."),
    ] = None,
) -> None:
    """Run the policy test cases; exit non-zero naming every failing case."""
    directory = dir or get_settings().policy_dir or default_policy_dir()
    try:
        report = run_policy_tests(directory, tests_dir=tests_dir)
    except PolicyLoadError as exc:
        _errors.print(
            f"[bold red]cannot run policy tests:[/] {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1) from exc
    failures = report.failures
    if failures:
        table = Table("case", "expected", "got", title="failing policy test cases")
        for f in failures:
            table.add_row(
                escape(f"{f.file}::{f.name}"),
                escape(f"{f.expected_decision} {', '.join(f.expected_policies) or '(no policy)'}"),
                escape(
                    f"{f.actual_decision} {', '.join(f.actual_policies) or '(no policy)'}"
                    + (f"\n{'; '.join(f.errors)}" if f.errors else "")
                ),
            )
        _errors.print(table)
        for f in failures:
            _errors.print(f"FAILED {f.message}", highlight=False, markup=False, soft_wrap=True)
        _errors.print(
            f"[bold red]{len(failures)} of {len(report.results)} policy test cases failed[/]"
        )
        raise typer.Exit(code=1)
    _console.print(
        f"[green]{len(report.results)} policy test cases passed[/] "
        f"(policies {report.policy_version})",
        highlight=False,
        soft_wrap=True,
    )


@policy_app.command()
def show(output: OutputOption = None) -> None:
    """The server's active policy set: version hash, files and policy ids (auditors)."""
    info = call("GET", "/v1/policies")

    def render(data: dict[str, Any]) -> None:
        console.print(
            f"policy set {data['version']}: {len(data['policies'])} policies in "
            f"{len(data['files'])} files",
            highlight=False,
            soft_wrap=True,
        )
        console.print(table(data["policies"], ["id", "effect", "file", "line"]))

    emit(info, output, render=render)


@policy_app.command()
def reload(output: OutputOption = None) -> None:
    """Make the server re-read its policy files (an invalid set is refused, the old one
    stays active)."""
    emit(call("POST", "/v1/policies:reload"), output)
