"""`privet monitor show` through the real CLI, the HTTP client pointed at the app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner


def test_monitor_show(
    app: Any,
    client: Any,
    make_caller: Any,
    project: str,
    make_version: Any,
    paths: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    import privet.cli.client as client_module
    from privet.cli.main import app as cli_app
    from privet.monitoring.stats import sparkline

    make_version(project)
    predictor = make_caller("predictor", project)
    auditor = make_caller("auditor", project)
    body = {"items": [{"text": f"late payment {i}", "purpose": "credit_scoring"} for i in range(5)]}
    assert (
        client.post(
            paths.predict(project, "risk", 1), json=body, headers=predictor.headers
        ).status_code
        == 200
    )
    monkeypatch.setattr(
        client_module,
        "client",
        lambda: TestClient(app, headers=auditor.headers, raise_server_exceptions=False),
    )
    runner = CliRunner()
    # not a terminal: JSON unless asked; the people's view is `-o table`
    res = runner.invoke(cli_app, ["monitor", "show", "risk@1", "--project", project, "-o", "table"])
    assert res.exit_code == 0, res.output
    assert "risk v1" in res.output and "approved" in res.output
    assert "review queue" in res.output and "predictions" in res.output
    res = runner.invoke(cli_app, ["monitor", "show", "risk", "--project", project, "--json"])
    assert res.exit_code == 0, res.output
    view = json.loads(res.output)
    assert view["model_version"] == 1 and view["windows"][0]["predictions"] == 5
    res = runner.invoke(cli_app, ["monitor", "show", "nope@1", "--project", project])
    assert res.exit_code == 1 and "404" in res.output
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▄█ "


def test_monitor_reference(
    app: Any,
    make_caller: Any,
    project: str,
    make_version: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`privet monitor reference` rebuilds through the API; a version whose lineage names
    no dataset version cannot have one: a readable error, and `show` says so."""
    from fastapi.testclient import TestClient

    import privet.cli.client as client_module
    from privet.cli.main import app as cli_app

    make_version(project)
    approver = make_caller("approver", project)
    monkeypatch.setattr(
        client_module,
        "client",
        lambda: TestClient(app, headers=approver.headers, raise_server_exceptions=False),
    )
    runner = CliRunner()
    res = runner.invoke(cli_app, ["monitor", "reference", "risk@1", "--project", project])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "409" in text and "no dataset version" in text
    res = runner.invoke(cli_app, ["monitor", "show", "risk@1", "--project", project, "-o", "table"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "reference failed: model version" in text and "no dataset version" in text
    assert f"privet monitor reference --project {project} risk@1" in text
