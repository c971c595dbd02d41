"""Help at 80 columns in a real terminal (a pty): every command's `--help` shows every
option name whole, no line is wider than the terminal, nothing is cut with an ellipsis."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios

import click
import typer

from privet.cli import app

CHILD = r"""
import sys
from privet.cli import app
for path in sys.argv[1:]:
    print(f"=== {path}")
    try:
        app([*path.split(), "--help"], prog_name="privet")
    except SystemExit:
        pass
"""


def _commands() -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: str) -> None:
        found[path] = cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


def _help_in_a_pty(paths: list[str], columns: int = 80) -> dict[str, str]:
    main, child = os.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERM")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *paths], stdin=child, stdout=child, stderr=child, env=env
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(main)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # colours are fine; measure the text
    sections = text.split("=== ")[1:]
    return {s.split("\n", 1)[0].strip(): s.split("\n", 1)[1] for s in sections}


def test_every_help_fits_80_columns_with_whole_option_names() -> None:
    commands = _commands()
    shown = _help_in_a_pty(list(commands))
    assert set(shown) == set(commands)
    problems = []
    for path, command in commands.items():
        text = shown[path]
        if "Usage:" not in text:
            problems.append((path, "no usage", text[:200]))
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for name in [*param.opts, *param.secondary_opts]:
                    if name.startswith("--") and name not in text.split():
                        problems.append((path, "option cut or missing", name))
        for line in text.splitlines():
            if len(line) > 80:
                problems.append((path, "wider than 80", line))
            if "…" in line:
                problems.append((path, "ellipsis", line))
    assert problems == [], problems
