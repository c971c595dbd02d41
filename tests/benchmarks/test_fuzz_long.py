"""The long schemathesis profile, on demand:

    .venv/bin/python -m pytest tests/benchmarks/test_fuzz_long.py -s

Every operation, every identity (default roles, a key without a role, the platform admin,
no credentials), PRIVET_FUZZ_EXAMPLES (default 25) positive and as many negative examples
each, on SQLite and on the PostgreSQL at 127.0.0.1:5432. Prints the request count and status
mix; fails on any 5xx, schema-violating response or error that is not problem+json."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hardening.fuzzing import build_target, run_fuzz

EXAMPLES = int(os.environ.get("PRIVET_FUZZ_EXAMPLES", "25"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_fuzz_long(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    url = None
    if backend == "postgres":
        url = request.getfixturevalue("pg_database").fresh()
    target = build_target(tmp_path / "home", url)
    report = run_fuzz(target, examples=EXAMPLES)
    print(f"[{backend}] {report.summary()}")
    assert report.failures == [], "\n\n".join(report.failures)
