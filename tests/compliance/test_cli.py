"""`privet dsr ...` and `privet reports export` through the real CLI commands, with the
HTTP client pointed at the app in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from privet_audit.cli import main as audit_main
from tests.compliance.conftest import SUBJECT, check_html
from tests.datasets.conftest import declarations, make_rows, to_csv, upload


@pytest.fixture
def cli(app: Any, monkeypatch: pytest.MonkeyPatch, make_caller: Any):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    import privet.cli.client as client_module
    from privet.cli.main import app as cli_app

    steward = make_caller("data_steward", None, name="steward")

    def fake_client() -> TestClient:
        return TestClient(app, headers=steward.headers, raise_server_exceptions=False)

    monkeypatch.setattr(client_module, "client", fake_client)  # downloads go through it too
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args), catch_exceptions=False)


def test_dsr_and_report_commands(cli, client, admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/projects", json={"name": "cli"}, headers=admin.headers)
    project = r.json()["id"]
    rows = make_rows(9, seed=4)
    rows[0]["customer"] = SUBJECT
    assert (
        upload(
            client, admin.headers, project, to_csv(rows), decl=declarations(name="cli")
        ).status_code
        == 201
    )

    res = cli("dsr", "submit", "--type", "access", "--subject-id", SUBJECT)
    assert res.exit_code == 0, res.output
    request_id = res.output.split()[0]
    assert request_id.startswith("dsr_") and "1 dataset version" in res.output
    res = cli("dsr", "list", "--json")
    assert res.exit_code == 0 and request_id in res.output
    res = cli("dsr", "show", request_id)
    assert res.exit_code == 0 and '"completed"' in res.output and SUBJECT not in res.output

    out = tmp_path / "ropa.json"
    res = cli("reports", "export", "--kind", "ropa", "--format", "json", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert audit_main(["verify-report", str(out)]) == 0
    html = tmp_path / "access.html"
    res = cli(
        "reports",
        "export",
        "--kind",
        "dsr",
        "--request",
        request_id,
        "--format",
        "html",
        "--out",
        str(html),
    )
    assert res.exit_code == 0, res.output
    assert SUBJECT in check_html(html.read_bytes())
    res = cli("reports", "export", "--kind", "access-log", "--out", str(tmp_path / "x.json"))
    assert res.exit_code == 1 and "403" in res.output
    res = cli("reports", "export", "--kind", "nope", "--out", str(tmp_path / "y"))
    assert res.exit_code == 2
