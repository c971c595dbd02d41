"""The docs keep up with the code: every setting is documented, every README command
exists, and .ci/run runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from privet.cli.config import settings_rows

REPO = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    documented = (REPO / "docs" / "CONFIGURATION.md").read_text()
    missing = [
        row["variable"] for row in settings_rows() if f"`{row['variable']}`" not in documented
    ]
    assert not missing, (
        f"regenerate docs/CONFIGURATION.md (privet config show --markdown): {missing}"
    )


def _readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Quick start")[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    install, test = commands
    assert "pip install" in install and "privet serve" in install
    ci = (REPO / ".ci" / "run").read_text()
    assert test.strip() in ci
    assert install.split(" && .venv/bin/privet serve")[0] in ci
