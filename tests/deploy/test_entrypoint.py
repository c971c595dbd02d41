"""deploy/docker-entrypoint.sh: PRIVET_*_FILE secrets become PRIVET_* variables."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy._support import DEPLOY, settings_env_names

SCRIPT = DEPLOY / "docker-entrypoint.sh"
pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *argv],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_file_secrets_become_variables(tmp_path: Path) -> None:
    url = tmp_path / "url"
    url.write_text("postgresql+psycopg://privet:p%40ss w0rd$x@db:5432/privet\n")
    pin = tmp_path / "pin"
    pin.write_text("1234")
    result = run(
        {"PRIVET_DATABASE_URL_FILE": str(url), "PRIVET_PKCS11_PIN_FILE": str(pin)},
        "sh",
        "-c",
        'printf "%s|%s|%s" "$PRIVET_DATABASE_URL" "$PRIVET_PKCS11_PIN" '
        '"${PRIVET_DATABASE_URL_FILE-unset}"',
    )
    assert result.returncode == 0, result.stderr
    # trailing newline stripped, shell metacharacters kept verbatim, *_FILE unset
    assert result.stdout == "postgresql+psycopg://privet:p%40ss w0rd$x@db:5432/privet|1234|unset"


def test_command_is_executed_with_its_arguments() -> None:
    result = run({}, "sh", "-c", 'echo "$0 $1"', "serve", "--host")
    assert result.returncode == 0 and result.stdout.strip() == "serve --host"


def test_both_forms_set_is_an_error(tmp_path: Path) -> None:
    url = tmp_path / "url"
    url.write_text("x")
    result = run({"PRIVET_DATABASE_URL": "y", "PRIVET_DATABASE_URL_FILE": str(url)}, "true")
    assert result.returncode == 64 and "both PRIVET_DATABASE_URL" in result.stderr


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    result = run({"PRIVET_PKCS11_PIN_FILE": str(tmp_path / "missing")}, "true")
    assert result.returncode == 66 and "not a readable file" in result.stderr


def test_other_file_variables_are_left_alone(tmp_path: Path) -> None:
    result = run({"RAY_AUTH_TOKEN_FILE": "/nonexistent"}, "sh", "-c", 'echo "$RAY_AUTH_TOKEN_FILE"')
    assert result.returncode == 0 and result.stdout.strip() == "/nonexistent"


def test_settings_named_file_are_not_secret_files() -> None:
    """A real setting ending in _FILE must pass through untouched, and the script must
    list every such setting."""
    text = SCRIPT.read_text("utf-8")
    listed = set(re.findall(r"^\s+(PRIVET_[A-Z0-9_]+_FILE)\)", text, re.MULTILINE))
    real = {n for n in settings_env_names() if n.endswith("_FILE")}
    assert listed == real
    result = run(
        {"PRIVET_LEDGER_SIGNING_KEY_FILE": "ledger.pem"},
        "sh",
        "-c",
        'echo "$PRIVET_LEDGER_SIGNING_KEY_FILE ${PRIVET_LEDGER_SIGNING_KEY-unset}"',
    )
    assert result.returncode == 0 and result.stdout.strip() == "ledger.pem unset"
