"""Run the policy test cases in ``<policy_dir>/tests/*.json`` against that directory's policies.

Each case states a request in plain values and the decision plus the exact set of
determining policy ids it must get; editing a policy so that a case changes makes the
run fail, naming the case.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from privet.policy.engine import PolicyEngine
from privet.policy.errors import PolicyLoadError, PolicyRequestError
from privet.policy.request import build_request
from privet.policy.schemas import (
    PolicyTestCase,
    PolicyTestFile,
    PolicyTestReport,
    PolicyTestResult,
)
from privet.policy.source import default_policy_dir

TESTS_SUBDIR = "tests"


def load_test_files(tests_dir: Path) -> list[tuple[str, PolicyTestFile]]:
    """Parse every ``*.json`` test file (sorted); a malformed file raises naming it."""
    if not tests_dir.is_dir():
        raise PolicyLoadError(file=tests_dir, line=None, message="policy tests directory not found")
    files: list[tuple[str, PolicyTestFile]] = []
    for path in sorted(tests_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PolicyLoadError(file=path, line=exc.lineno, message=exc.msg) from exc
        try:
            files.append((path.name, PolicyTestFile.model_validate(data)))
        except ValidationError as exc:
            raise PolicyLoadError(file=path, line=None, message=str(exc)) from exc
    if not files:
        raise PolicyLoadError(file=tests_dir, line=None, message="no *.json policy test files")
    return files


def run_case(engine: PolicyEngine, case: PolicyTestCase, *, file: str) -> PolicyTestResult:
    """Evaluate one case through the same request builder the gateway uses."""
    try:
        request = build_request(
            principal_type=case.principal.type,
            principal_id=case.principal.id,
            action=case.action,
            resource_type=case.resource.type,
            resource_id=case.resource.id,
            resource_attributes=case.resource.attributes,
            project_id=case.project,
            roles=case.roles,
            grants=case.grants,
            context=case.context,
            principal_accountable=case.principal.attributes.get("accountable"),
        )
    except PolicyRequestError as exc:
        return PolicyTestResult(
            file=file,
            name=case.name,
            passed=False,
            expected_decision=case.expect.decision,
            expected_policies=tuple(sorted(case.expect.policies)),
            actual_decision="error",
            actual_policies=(),
            errors=(str(exc),),
        )
    decision = engine.evaluate(request)
    expected_policies = tuple(sorted(case.expect.policies))
    passed = (
        decision.outcome == case.expect.decision
        and decision.policy_ids == expected_policies
        and not decision.errors
    )
    return PolicyTestResult(
        file=file,
        name=case.name,
        passed=passed,
        expected_decision=case.expect.decision,
        expected_policies=expected_policies,
        actual_decision=decision.outcome,
        actual_policies=decision.policy_ids,
        errors=decision.errors,
    )


def run_policy_tests(
    policy_dir: Path | str | None = None, *, tests_dir: Path | str | None = None
) -> PolicyTestReport:
    """Load ``policy_dir`` (default: shipped policies) and run its test cases.

    ``tests_dir`` defaults to ``<policy_dir>/tests``. Raises ``PolicyLoadError`` if
    the policies or a test file cannot be loaded; otherwise reports every case.
    """
    directory = Path(policy_dir) if policy_dir is not None else default_policy_dir()
    engine = PolicyEngine.load(directory)
    cases_dir = Path(tests_dir) if tests_dir is not None else directory / TESTS_SUBDIR
    results = [
        run_case(engine, case, file=name)
        for name, test_file in load_test_files(cases_dir)
        for case in test_file.cases
    ]
    return PolicyTestReport(policy_version=engine.version, results=tuple(results))
