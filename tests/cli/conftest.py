"""The real `privet` command tree against the app in-process: only the HTTP transport is
swapped (`privet.cli.client._http` returns a TestClient for the URL and key the CLI chose),
so profile resolution, requests, problem printing and output formatting all run for real.

The CLI is a client: its tests run on SQLite only (the API's own tests cover PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.sqlite_only import db_url  # noqa: F401 - the CLI is a client: SQLite only

Run = Callable[..., Result]


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("PRIVET_URL", "PRIVET_API_KEY", "PRIVET_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def cli(app: Any, monkeypatch: pytest.MonkeyPatch, config_home: Path) -> Run:
    """cli(*args, key=KEY, input=...) runs `privet ARGS` with PRIVET_API_KEY=KEY."""
    from fastapi.testclient import TestClient

    import privet.cli.client as client_module
    from privet.cli import app as cli_app

    def transport(url: str, key: str | None) -> TestClient:
        return TestClient(
            app,
            base_url=url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            raise_server_exceptions=False,
        )

    monkeypatch.setattr(client_module, "_http", transport)
    runner = CliRunner()

    def run(*args: str, key: str | None = None, input: str | None = None) -> Result:
        env = {"PRIVET_API_KEY": key} if key else {}
        return runner.invoke(cli_app, list(args), env=env, input=input, catch_exceptions=False)

    return run


TrainCli = Callable[..., tuple[str, dict[str, Any]]]


@pytest.fixture
def train_cli(  # type: ignore[no-untyped-def]
    cli: Run, client: Any, project, engineer, dataset_version, make_worker
) -> TrainCli:
    """train_cli(*OPTIONS): `privet train submit` of the tiny-test base model on the
    project's dataset version (as its engineer), run by one worker tick; (job id, the
    job as `privet train show -o json` prints it)."""

    def run(*options: str) -> tuple[str, dict[str, Any]]:
        job_id = cli(
            "train", "submit", project, "--dataset-version", dataset_version["id"],
            "--base-model", "tiny-test", *options, "-q", key=engineer.key,
        ).stdout.strip()  # fmt: skip
        assert make_worker().tick() is True
        shown = cli("train", "show", project, job_id, "-o", "json", key=engineer.key)
        job: dict[str, Any] = json.loads(shown.stdout)
        return job_id, job

    return run
