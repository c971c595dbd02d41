"""The reports registry is the one list of report kinds: the API routes, the CLI's
`reports export --kind` and the table in docs/COMPLIANCE.md all name exactly its kinds,
with the parameters and actions it gives them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from privet.policy.actions import REPORT_ACTIONS
from privet.reports import FORMATS, KINDS, REGISTRY
from privet.reports.render import TEMPLATES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "COMPLIANCE.md"
ROW = re.compile(r"^\| `(?P<kind>[a-z-]+)` \| `(?P<action>[^`]+)` \| (?P<params>[^|]*) \|")


def _docs_rows() -> dict[str, dict[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("\n## Reports\n", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["kind"]] = {"action": m["action"], "params": m["params"]}
    return rows


def test_kinds_are_the_registry_in_order() -> None:
    assert tuple(REGISTRY) == KINDS
    assert all(name == spec.name for name, spec in REGISTRY.items())
    assert "monitoring" in KINDS


def test_docs_name_exactly_the_registry_kinds_with_their_parameters() -> None:
    rows = _docs_rows()
    assert sorted(rows) == sorted(KINDS)
    for kind, spec in REGISTRY.items():
        params = rows[kind]["params"]
        assert set(re.findall(r"`([a-z_]+)`", params)) == set(spec.parameters), kind
        for name in spec.required:
            assert f"`{name}` (required)" in params, (kind, name)
        assert rows[kind]["action"] == REPORT_ACTIONS[kind].value


def test_every_kind_has_an_action_a_template_and_every_format() -> None:
    assert set(REPORT_ACTIONS) == set(KINDS)
    for kind, spec in REGISTRY.items():
        assert (TEMPLATES / f"{kind}.html").is_file(), kind
        assert spec.formats == FORMATS
        assert set(spec.required) <= set(spec.parameters)
        assert spec.description


def test_the_api_serves_one_route_per_registry_kind() -> None:
    from privet.api.routes.compliance import router

    paths = {getattr(r, "path", "") for r in router.routes}
    served = {p.removeprefix("/v1/reports/") for p in paths if p.startswith("/v1/reports/")}
    assert served == set(KINDS)


def test_cli_choices_are_the_registry() -> None:
    from privet.cli import app
    from privet.cli import compliance as cli

    assert cli.KINDS == KINDS and cli.FORMATS == FORMATS
    group = typer.main.get_command(app)
    export = group.commands["reports"].commands["export"]  # type: ignore[attr-defined]
    kind = next(p for p in export.params if p.name == "kind")
    assert kind.help == f"One of {', '.join(KINDS)}, or 'dsr' with --request."


@pytest.mark.parametrize("kind", ["nope", "builders"])
def test_cli_refuses_a_kind_not_in_the_registry(kind: str, tmp_path: Path) -> None:
    from privet.cli import app

    res = CliRunner().invoke(
        app, ["reports", "export", "--kind", kind, "--out", str(tmp_path / "r.json")]
    )
    assert res.exit_code == 2
    assert all(k in " ".join(res.output.split()) for k in KINDS)
