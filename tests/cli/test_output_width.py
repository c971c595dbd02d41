"""Machine-readable output does not wrap: the model card is valid YAML front matter at any
width. People's output is rounded and sized: the `train submit --watch` line keeps its
times whole at 80 columns and shows a rounded macro-F1."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import yaml
from rich.console import Console

from tests.cli.conftest import Run
from tests.inference.conftest import (  # noqa: F401 - fixtures
    _fast_state_ttl,
    make_version,
    tiny_base,
)


def test_model_card_is_valid_yaml_at_any_width(
    cli: Run,
    admin: Any,
    make_version: Any,  # noqa: F811
    monkeypatch: Any,
) -> None:
    project = cli("projects", "create", "credit", "-q", key=admin.key).stdout.strip()
    version = make_version(project)
    monkeypatch.setenv("COLUMNS", "30")
    card = cli("models", "show", project, version.id, "--card", key=admin.key)
    assert card.exit_code == 0, card.output
    assert card.stdout.startswith("---\n")
    front = yaml.safe_load(card.stdout.split("---\n", 2)[1])
    assert isinstance(front, dict) and front, card.stdout[:500]
    long_lines = [line for line in card.stdout.splitlines() if len(line) > 30]
    assert long_lines, "the card has long lines, and they stay whole"
    shown = json.loads(cli("models", "show", project, version.id, key=admin.key).stdout)
    assert shown["id"] == version.id


def test_watch_line_keeps_times_whole_and_rounds_metrics() -> None:
    from privet.cli.jobs import _describe, _print_outcome, job_progress

    job = {
        "id": "job_0123456789abcdefghij",
        "state": "succeeded",
        "model_version_id": "mv_0123456789abcdefghij",
        "progress": {"step": 26, "total_steps": 26, "epoch": 2, "epochs": 2, "loss": 0.6931471},
        "result": {
            "metrics": {"accuracy": 0.9125, "macro_f1": 0.9123456789012345},
            "privacy": {"epsilon": 2.987654321},
        },
    }
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    with job_progress(console) as bar:
        task = bar.add_task("train", total=26, completed=26, status=_describe(job))
        bar.update(task, completed=26)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    line = [row for row in text.splitlines() if "26/26" in row][-1]
    assert "0:00:00" in line and "…" not in line.split("26/26")[1][:20], line
    assert "macro-F1 0.912" in line and "0.9123456789" not in line, line
    out.truncate(0)
    _print_outcome(job, console)
    said = " ".join(out.getvalue().split())
    assert "macro-F1 0.912" in said and "0.91234" not in said and "ε 2.988" in said, said
