"""Every operation of the API a person performs has a `privet` command (the mapping in
`privet.cli.coverage`); the rest are listed as machine-only, with a reason."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer

from privet.cli import app as cli_app
from privet.cli.coverage import COMMANDS, MACHINE_ONLY

PARAM = re.compile(r"\{[^}]+\}")


def _operations() -> set[str]:
    import tempfile

    from privet.api.app import create_app
    from privet.config import Settings

    with tempfile.TemporaryDirectory() as home:
        spec = create_app(settings=Settings(home=Path(home) / "home")).openapi()
    return {
        f"{method.upper()} {PARAM.sub('{}', path)}"
        for path, ops in spec["paths"].items()
        for method in ops
    }


def _resolve(line: str) -> tuple[click.Command | None, list[str]]:
    """`group sub --opt` → the click command and the options named."""
    words = line.split()
    command: click.Command = typer.main.get_command(cli_app)
    while words and not words[0].startswith("-"):
        sub = getattr(command, "commands", {}).get(words[0])
        if sub is None:
            return None, []
        command, words = sub, words[1:]
    return command, words


def test_every_api_operation_has_a_command_or_a_reason() -> None:
    missing = sorted(_operations() - set(COMMANDS) - set(MACHINE_ONLY))
    assert missing == [], (
        f"API operations without a CLI command (add to privet.cli.coverage): {missing}"
    )
    assert all(reason.strip() for reason in MACHINE_ONLY.values())


def test_every_mapped_command_and_option_exists() -> None:
    wrong = []
    for operation, line in COMMANDS.items():
        command, options = _resolve(line)
        if command is None or hasattr(command, "commands"):
            wrong.append((operation, line, "no such command"))
            continue
        names = {opt for param in command.params for opt in param.opts}
        wrong += [(operation, line, opt) for opt in options if opt not in names]
    assert wrong == []


def test_no_stale_entries() -> None:
    stale = (set(COMMANDS) | set(MACHINE_ONLY)) - _operations()
    assert stale == set(), f"mapped operations the API no longer has: {sorted(stale)}"
