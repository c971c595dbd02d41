"""`privet config`: every setting of every section, as the running process sees it.

Settings live beside the code they configure (core in `privet.config`, the rest in each
domain's `settings.py`); this command is the one place that shows them all together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from rich.console import Console
from rich.table import Table

from privet.auth.settings import get_console_session_settings
from privet.basemodels.settings import get_base_model_settings
from privet.cli.output import group
from privet.compliance.settings import get_compliance_settings
from privet.config import get_settings
from privet.crypto.settings import get_crypto_settings
from privet.datasets.settings import get_dataset_settings
from privet.executors.settings import get_executor_settings
from privet.inference.settings import get_inference_settings
from privet.jobs.settings import get_job_settings
from privet.ledger.settings import get_ledger_settings
from privet.monitoring.settings import get_monitoring_settings

#: Each section's getter: the values this process runs with (``privet.config``).
SECTIONS: tuple[tuple[str, Callable[[], BaseSettings]], ...] = (
    ("core", get_settings),
    ("crypto", get_crypto_settings),
    ("ledger", get_ledger_settings),
    ("datasets", get_dataset_settings),
    ("jobs", get_job_settings),
    ("base models", get_base_model_settings),
    ("executors", get_executor_settings),
    ("inference", get_inference_settings),
    ("compliance", get_compliance_settings),
    ("monitoring", get_monitoring_settings),
    ("console", get_console_session_settings),
)

config_app = group("Show the effective configuration (PRIVET_* variables).")
console = Console()


def settings_rows() -> list[dict[str, Any]]:
    """One row per setting: section, environment variable, current value, description."""
    rows = []
    for section, read in SECTIONS:
        current = read()
        cls = type(current)
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            value = getattr(current, name)
            shown = "********" if isinstance(value, SecretStr) and value else value
            rows.append(
                {
                    "section": section,
                    "variable": f"{prefix}{name}".upper(),
                    "value": shown
                    if shown is None or isinstance(shown, int | float | bool)
                    else str(shown),
                    "description": field.description or "",
                }
            )
    return rows


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="A Markdown table (docs/CONFIGURATION.md).")
    ] = False,
) -> None:
    """Print every setting with its variable and current value (secrets masked)."""
    rows = settings_rows()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if markdown:
        print("| section | variable | value here | meaning |\n| --- | --- | --- | --- |")
        for row in rows:
            meaning = row["description"].replace("|", "\\|")
            print(f"| {row['section']} | `{row['variable']}` | `{row['value']}` | {meaning} |")
        return
    table = Table("section", "variable", "value", "meaning")
    for row in rows:
        table.add_row(row["section"], row["variable"], str(row["value"]), row["description"])
    console.print(table)
