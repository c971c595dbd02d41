"""`privet policy validate|test`: pass on the shipped set, fail naming the broken case."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from privet.cli.policy import policy_app
from privet.policy import run_policy_tests

from .helpers import replace_in

runner = CliRunner()


def test_shipped_policy_tests_pass(shipped_dir: Path) -> None:
    report = run_policy_tests(shipped_dir)
    assert report.passed, [f.message for f in report.failures]
    assert len(report.results) > 300


def test_cli_test_passes_on_shipped_policies() -> None:
    result = runner.invoke(policy_app, ["test"])
    assert result.exit_code == 0, result.output
    assert "policy test cases passed" in result.output


def test_cli_test_fails_naming_the_case_when_a_role_is_edited(policy_copy: Path) -> None:
    replace_in(policy_copy / "role_auditor.cedar", '    Action::"audit.export",\n', "")
    result = runner.invoke(policy_app, ["test", "--dir", str(policy_copy)])
    assert result.exit_code == 1
    assert "FAILED role_matrix.json::auditor audit.export" in result.output
    assert "1 of " in result.output


def test_cli_test_fails_naming_the_case_when_a_ceiling_is_tightened(policy_copy: Path) -> None:
    replace_in(
        policy_copy / "privacy_ceilings.cedar",
        'contains("health") &&\n  context has epsilon &&\n'
        '  context.epsilon.greaterThan(decimal("3.0"))',
        'contains("health") &&\n  context has epsilon &&\n'
        '  context.epsilon.greaterThan(decimal("2.0"))',
    )
    report = run_policy_tests(policy_copy)
    assert [f.name for f in report.failures] == ["ceiling: health at 3.0 is allowed"]
    result = runner.invoke(policy_app, ["test", "--dir", str(policy_copy)])
    assert result.exit_code == 1
    assert "data_handling.json::ceiling: health at 3.0 is allowed" in result.output


def test_cli_test_fails_when_a_forbid_is_removed(policy_copy: Path) -> None:
    target = policy_copy / "model_governance.cedar"
    text = target.read_text()
    start = text.index("// Segregation of duties")
    end = text.index("// Only approved versions serve")
    target.write_text(text[:start] + text[end:])
    result = runner.invoke(policy_app, ["test", "--dir", str(policy_copy)])
    assert result.exit_code == 1
    assert "sod: the submitter cannot approve its own model" in result.output


def test_cli_validate(policy_copy: Path) -> None:
    ok = runner.invoke(policy_app, ["validate", "--dir", str(policy_copy), "--verbose"])
    assert ok.exit_code == 0, ok.output
    assert "sha256:" in ok.output and "role.admin" in ok.output
    replace_in(policy_copy / "tenancy.cedar", "resource.project != context.project", "resource.x")
    bad = runner.invoke(policy_app, ["validate", "--dir", str(policy_copy)])
    assert bad.exit_code == 1
    assert "tenancy.cedar:" in bad.output


def test_cli_test_reports_a_malformed_case_file(policy_copy: Path) -> None:
    (policy_copy / "tests" / "zz_bad.json").write_text('{"cases": [{"name": "x"}]}')
    result = runner.invoke(policy_app, ["test", "--dir", str(policy_copy)])
    assert result.exit_code == 1
    assert "zz_bad.json" in result.output
