"""Schemathesis fuzzing of the gateway against its own OpenAPI schema, shared by the bounded
profile (tests/hardening/test_fuzz.py) and the long one (tests/benchmarks/test_fuzz_long.py).

Every operation is called as every default role (bound in one project), as a caller with no
credentials, and as a caller with a valid key but no role. Half of the examples are
schema-valid (positive) and half schema-invalid (negative). For path parameters named after a
real object (`project_id`, `dataset_id`, ...) the real id is used most of the time, so the
request gets past authorization into the service code, where 5xx bugs live.

Checks per response: not a 5xx, the body conforms to the documented response schema, and
every 4xx/5xx is RFC 9457 problem+json whose `status` matches. Failures are collected (not
raised inside Hypothesis, which would spend minutes shrinking) and reported together.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import bootstrap_admin_key, mint_key, seed_principal

ROLES = ("admin", "data_steward", "ml_engineer", "approver", "auditor", "predictor")


@dataclass
class Target:
    app: Any
    project_id: str
    headers: dict[str, dict[str, str]]  # identity name → request headers
    ids: dict[str, str] = field(default_factory=dict)  # path parameter → a real id


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    operations: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.operations} operations, {self.requests} requests in {self.seconds:.0f} s "
            f"({codes}); {len(self.failures)} failures"
        )


def build_target(home: Path, database_url: str | None = None) -> Target:
    """A gateway on a fresh database with one project, a caller per role bound in it, and a
    dataset, so that real ids exist for the fuzzer to aim at."""
    from privet import migrate
    from privet.api.app import create_app
    from privet.config import Settings
    from privet.db import create_db_engine, session_scope
    from privet.runtime import build_runtime

    home.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{home / 'privet.db'}"
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    settings = Settings(home=home, database_url=url)
    runtime = build_runtime(settings)
    app = create_app(runtime=runtime)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    headers["platform_admin"] = bootstrap_admin_key(runtime, "fuzz root").headers

    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        created = client.post(
            "/v1/projects", json={"name": "fuzz"}, headers=headers["platform_admin"]
        )
        assert created.status_code == 201, created.text
        project_id = created.json()["id"]

    def caller(role: str | None, name: str) -> dict[str, str]:
        with session_scope(runtime.engine) as session:
            principal = seed_principal(session, role, project_id, name)
            made = mint_key(session, runtime, principal.id, name)
        return {"Authorization": f"Bearer {made.key}"}

    for role in ROLES:
        headers[role] = caller(role, f"fuzz-{role}")
    headers["no_role"] = caller(None, "fuzz-nobody")

    ids = {"project_id": project_id}
    with TestClient(app) as client:
        from tests.datasets.conftest import make_rows, to_csv, upload

        uploaded = upload(
            client,
            headers["platform_admin"],
            project_id,
            to_csv(make_rows(30)),
            filename="fuzz.csv",
            content_type="text/csv",
        )
        if uploaded.status_code == 201:
            body = uploaded.json()
            ids["dataset_id"] = body.get("dataset_id") or body.get("dataset", {}).get("id", "")
            ids["version"] = str(body.get("version", 1))
        keys = client.get("/v1/api-keys", headers=headers["platform_admin"])
        if keys.status_code == 200 and keys.json():
            ids["key_id"] = keys.json()[0]["id"]
    return Target(app=app, project_id=project_id, headers=headers, ids=ids)


def _problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json with a matching status and a type URI."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} with content-type {content_type!r}"
    )
    body = json.loads(response.content)
    assert body.get("status") == response.status_code, body
    assert str(body.get("type", "")).startswith("https://privet.dev/problems/"), body
    assert body.get("title") and isinstance(body.get("detail"), str), body
    return None


def run_fuzz(
    target: Target,
    *,
    examples: int,
    identities: tuple[str, ...] | None = None,
    negative_identities: tuple[str, ...] | None = None,
    seed: int = 13,
) -> FuzzReport:
    from schemathesis.checks import check

    problem_check = check(_problem_json)
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    report = FuzzReport()
    started = time.monotonic()
    names = identities or tuple(target.headers)
    negative = names if negative_identities is None else negative_identities
    checks = [not_a_server_error, response_schema_conformance, problem_check]
    for result in schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            for name in names if mode == GenerationMode.POSITIVE else negative:
                _fuzz_one(operation, strategy, name, target, examples, seed, checks, report)
    report.seconds = time.monotonic() - started
    return report


def _fuzz_one(
    operation: Any,
    strategy: Any,
    name: str,
    target: Target,
    examples: int,
    seed: int,
    checks: list[Any],
    report: FuzzReport,
) -> None:
    seen: set[str] = set()

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.seed(seed)
    @hypothesis.given(case=strategy, aim=st.booleans())
    def probe(case: Any, aim: bool) -> None:
        if aim and case.path_parameters:
            for param in list(case.path_parameters):
                if param in target.ids:
                    case.path_parameters[param] = target.ids[param]
        try:
            response = case.call(headers=target.headers[name])
        except Exception as exc:  # a transport-level crash is a finding too
            report.failures.append(f"{operation.label} as {name}: request raised {exc!r}")
            return
        report.requests += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks)
        except Exception as exc:
            key = f"{operation.label}|{response.status_code}|{type(exc).__name__}"
            if key not in seen:
                seen.add(key)
                text = str(exc)[:1500]
                report.failures.append(
                    f"{operation.label} as {name} → {response.status_code}:\n{text}"
                )

    try:
        probe()
    except hypothesis.errors.Unsatisfiable:
        pass  # e.g. no schema-invalid request exists for an operation without inputs
