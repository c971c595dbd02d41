"""Bounded schemathesis profile (CI): every operation of the OpenAPI schema, as every
default role, the platform admin and no credentials, one schema-valid example each, and
one schema-invalid example as the platform admin (who gets furthest past authorization):
no 5xx, no response outside its schema, problem+json on every error. The long profile is
tests/benchmarks/test_fuzz_long.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hardening.fuzzing import ROLES, build_target, run_fuzz


@pytest.mark.slow
def test_fuzz_every_operation_as_every_role(tmp_path: Path) -> None:
    target = build_target(tmp_path / "home")
    assert set(ROLES) <= set(target.headers) and "anonymous" in target.headers
    identities = ("anonymous", "platform_admin", *ROLES)
    report = run_fuzz(
        target, examples=1, identities=identities, negative_identities=("platform_admin",)
    )
    print(report.summary())
    assert report.operations >= 50
    assert report.requests >= report.operations * len(identities)
    assert report.failures == [], "\n\n".join(report.failures)
