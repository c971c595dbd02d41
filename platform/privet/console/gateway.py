"""The gateway `privet serve` runs: the API at its paths (/v1, /healthz, ...) and the
console at every other path. One runtime, one lifespan (the API's)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from privet.api.app import create_app
from privet.api.deps import iter_api_routes
from privet.api.middleware import RequestContextMiddleware
from privet.config import Settings, get_settings
from privet.console.app import create_console
from privet.runtime import Runtime, build_runtime


class Gateway:
    """Sends a request to the API when its first path segment is one of the API's,
    otherwise to the console (so the API's own 404 and 405 problems are unchanged)."""

    def __init__(self, api: ASGIApp, console: ASGIApp, api_segments: frozenset[str]) -> None:
        self.api = api
        self.console = console
        self.api_segments = api_segments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.api(scope, receive, send)
            return
        segment = str(scope.get("path", "/")).lstrip("/").split("/", 1)[0]
        target = self.api if segment in self.api_segments else self.console
        await target(scope, receive, send)


def create_gateway(settings: Settings | None = None, runtime: Runtime | None = None) -> Gateway:
    """API and console on one runtime (uvicorn's factory: `privet serve`)."""
    settings = settings or (runtime.settings if runtime else get_settings())
    runtime = runtime or build_runtime(settings)
    api = create_app(runtime=runtime)
    segments = {r.path.lstrip("/").split("/", 1)[0] for r in iter_api_routes(api.routes)}
    segments |= {"docs", "redoc", "openapi.json", "v1"}
    limit = settings.max_body_bytes
    pages = create_console(runtime)
    pages.state = api.state  # one runtime, one inference service (model cache) for both
    console = RequestContextMiddleware(
        pages, limit_for=lambda _scope: limit, registry=CollectorRegistry()
    )
    return Gateway(api, console, frozenset(segments))
