"""deploy/README.md stays true to the code: the settings, commands and SQL it shows exist."""

from __future__ import annotations

import re
import shlex

from tests.deploy._support import DEPLOY, PRIVET_ENV_RE, check_cli_args, unknown_settings

README = (DEPLOY / "README.md").read_text("utf-8")


def test_every_privet_variable_in_the_readme_is_a_real_setting() -> None:
    names = {n for n in PRIVET_ENV_RE.findall(README) if not n.endswith("_")}
    assert len(names) > 20
    assert unknown_settings(names) == []


def test_every_privet_command_in_the_readme_exists() -> None:
    commands = re.findall(r"`privet ([^`]+)`", README)
    assert len(commands) > 8
    problems = []
    for command in commands:
        argv = [a for a in shlex.split(command) if a not in ("…", "...")]
        problems += check_cli_args(argv)
    assert problems == []


def _normalized_role_sql(text: str) -> list[str]:
    statements = re.findall(
        r"^(?:CREATE ROLE|CREATE DATABASE|REVOKE|GRANT|ALTER SCHEMA)[^;]*;", text, re.MULTILINE
    )
    return [re.sub(r"PASSWORD \S+", "PASSWORD x", s) for s in statements]


def test_readme_role_sql_is_what_compose_runs() -> None:
    initdb = (DEPLOY / "postgres" / "initdb" / "10-privet-roles.sh").read_text("utf-8")
    readme = _normalized_role_sql(README)
    assert readme == _normalized_role_sql(initdb)
    assert "CREATE ROLE privet LOGIN PASSWORD x IN ROLE privet_app;" in readme
