"""No route without a decision: every route of the app names exactly one Cedar action that
the policy schema declares (health, readiness, metrics, the sign-in config and the docs
excepted)."""

from __future__ import annotations

from privet.api.deps import iter_api_routes, route_actions
from privet.policy.actions import Action

EXEMPT = {"/healthz", "/readyz", "/metrics", "/v1/auth/config"}


def test_every_route_declares_one_known_action(app) -> None:  # type: ignore[no-untyped-def]
    known = {a.value for a in Action}
    checked = 0
    for route in iter_api_routes(app.routes):
        if route.path in EXEMPT:
            continue
        actions = route_actions(route.dependant)
        assert len(actions) == 1, f"{route.methods} {route.path} declares {actions}"
        assert actions[0] in known, f"{route.path}: {actions[0]!r} is not in the policy schema"
        checked += 1
    assert checked >= 9


def test_a_route_that_forgets_its_check_fails_closed(runtime, admin) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from privet.api.app import create_app
    from privet.api.deps import Guard, action

    app = create_app(runtime=runtime)

    @app.get("/v1/forgetful")
    def forgetful(guard: Guard = action("project.list")) -> dict[str, str]:
        return {"secret": "leaked"}

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/forgetful", headers=admin.headers)
    assert response.status_code == 500, response.text
    assert "leaked" not in response.text
