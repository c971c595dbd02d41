"""Authorization cost through the gateway (issue 5), on demand:

    .venv/bin/python -m pytest tests/benchmarks/test_gateway_authz.py -s

Same process, same app, interleaved rounds, p50 latencies of:
  health    GET /healthz — no authentication, no authorization, no database;
  allow-all GET /v1/projects/{id} with the Cedar call replaced by "allow" (authentication,
            database read, decision event written and committed — everything but Cedar);
  cedar     the same request with the real policy engine;
  decide    the CedarAuthorizer.decide call alone (request building + Cedar).
The figure of interest is cedar - allow-all (the policy decision's share of a request).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import bootstrap_admin_key


def _p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def test_gateway_authorization_overhead(tmp_path: Path) -> None:
    from privet import migrate
    from privet.api.app import create_app
    from privet.api.deps import Resource
    from privet.auth import service
    from privet.authorization import GatewayDecision
    from privet.config import Settings
    from privet.db import session_scope
    from privet.runtime import build_runtime

    runtime = build_runtime(Settings(home=tmp_path / "home"))
    migrate.upgrade(runtime.engine)
    key = bootstrap_admin_key(runtime, "bench").key
    headers = {"Authorization": f"Bearer {key}"}
    app = create_app(runtime=runtime)
    real_decide = runtime.authorizer.decide
    version = runtime.authorizer.engine.version

    def allow_all(**_: object) -> GatewayDecision:
        return GatewayDecision(True, ("bench.allow",), version)

    rounds, per_round = 8, 40
    samples: dict[str, list[float]] = {"health": [], "allow-all": [], "cedar": [], "decide": []}
    with TestClient(app) as client:
        project = client.post("/v1/projects", json={"name": "bench"}, headers=headers).json()
        url = f"/v1/projects/{project['id']}"
        identity = None
        for _ in range(rounds):
            for _ in range(per_round):  # alternate request by request: same background load
                for name in ("health", "allow-all", "cedar"):
                    runtime.authorizer.decide = (  # type: ignore[method-assign]
                        allow_all if name == "allow-all" else real_decide
                    )
                    start = time.perf_counter()
                    response = client.get("/healthz" if name == "health" else url, headers=headers)
                    samples[name].append(time.perf_counter() - start)
                    assert response.status_code == 200
            runtime.authorizer.decide = real_decide  # type: ignore[method-assign]
            if identity is None:
                with session_scope(runtime.engine) as session:
                    identity = service.authenticate_api_key(
                        session, pepper=runtime.api_key_pepper, presented=key
                    )
            resource = Resource(type="Project", id=project["id"], project_id=project["id"])
            for _ in range(per_round):
                start = time.perf_counter()
                real_decide(identity=identity, action="project.read", resource=resource, context={})
                samples["decide"].append(time.perf_counter() - start)
    p50 = {name: _p50_ms(values) for name, values in samples.items()}
    for name, value in p50.items():
        print(f"{name:>10}: p50 {value:7.3f} ms over {len(samples[name])} requests")
    print(
        f"policy decision's share of a request (cedar - allow-all): "
        f"{p50['cedar'] - p50['allow-all']:.3f} ms; decide() alone {p50['decide']:.3f} ms; "
        f"authorized request / health ratio {p50['cedar'] / p50['health']:.1f}x"
    )
    assert p50["decide"] > 0
