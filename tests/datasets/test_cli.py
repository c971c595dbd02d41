"""`privet datasets upload|list|show|sweep` against the app (client) and the database (sweep)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.datasets.conftest import make_rows, to_csv


@pytest.fixture
def cli(app, admin, runtime, monkeypatch):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    import privet.cli.client as client_module
    import privet.config as config_module

    monkeypatch.setattr(client_module, "client", lambda: TestClient(app, headers=admin.headers))
    monkeypatch.setattr(config_module, "get_settings", lambda: runtime.settings)
    return CliRunner()


def test_cli_upload_list_show_sweep(cli, client, admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from privet.cli.datasets import datasets_app

    project = client.post("/v1/projects", json={"name": "cli"}, headers=admin.headers).json()["id"]
    path = tmp_path / "complaints.csv"
    path.write_bytes(to_csv(make_rows(50)))
    args = [
        "upload", str(path), "--project", project, "--text-column", "text",
        "--label-column", "label", "--subject-id-column", "customer", "--personal-data",
        "--purpose", "complaint_routing", "--legal-basis", "contract",
        "--retention-days", "30", "--category", "contact", "--epsilon", "3", "--json",
    ]  # fmt: skip
    result = cli.invoke(datasets_app, args)
    assert result.exit_code == 0, result.output
    version = json.loads(result.stdout[result.stdout.index("{") :])
    assert version["row_count"] == 50 and version["dataset_name"] == "complaints"
    assert version["epsilon_total"] == 3.0
    listed = cli.invoke(datasets_app, ["list", "--project", project])
    assert listed.exit_code == 0 and "complaints" in listed.stdout
    shown = cli.invoke(datasets_app, ["show", version["dataset_id"], "--project", project])
    assert shown.exit_code == 0 and "complaints" in shown.stdout
    shown = cli.invoke(
        datasets_app, ["show", version["dataset_id"], "--project", project, "--json"]
    )
    assert json.loads(shown.stdout)["versions"][0]["id"] == version["id"]
    swept = cli.invoke(datasets_app, ["sweep"])
    assert swept.exit_code == 0, swept.output
    assert "0 version(s) shredded" in swept.stdout
    bad = cli.invoke(datasets_app, [*args[:5], "nope", *args[6:]])
    assert bad.exit_code == 1
    assert "missing column" in bad.output
