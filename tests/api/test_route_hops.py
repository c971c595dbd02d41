"""A plain `def` route costs one thread-pool hop, and its response is validated on the event
loop (privet.api.routing, issue 23 item 4: each hop cost the audited GET ~0.2 ms of CPU)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from privet.api.deps import iter_api_routes
from privet.api.routing import OneHopRoute
from tests.conftest import Caller


def test_every_api_route_is_one_hop(app: FastAPI) -> None:
    routes = [r for r in iter_api_routes(app.routes) if r.path.startswith(("/v1", "/healthz"))]
    assert routes
    for route in routes:
        assert isinstance(route, OneHopRoute), route.path
        original = inspect.unwrap(route.endpoint)
        if not inspect.isgeneratorfunction(original):
            # FastAPI validates the response in a second hop for a plain `def` endpoint
            assert inspect.iscoroutinefunction(route.dependant.call), route.path


def test_an_audited_get_takes_three_hops(
    client: TestClient, admin: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's key (its own hop: it reads the database), the endpoint, the end of the
    transaction; before: a fourth, the response's validation."""
    project = client.post("/v1/projects", json={"name": "hops"}, headers=admin.headers)
    assert project.status_code == 201, project.text
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(inspect.unwrap(func), "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    got = client.get(f"/v1/projects/{project.json()['id']}", headers=admin.headers)
    assert got.status_code == 200, got.text
    assert got.json()["name"] == "hops"
    assert len(hops) == 3, hops
