"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import Scope

from privet import __version__
from privet.api import problems
from privet.api.middleware import RequestContextMiddleware
from privet.api.routes import api_keys, health, projects
from privet.config import Settings, get_settings
from privet.runtime import Runtime, build_runtime


def _limit_for(settings: Settings):  # type: ignore[no-untyped-def]
    def limit(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-type" and value.startswith(b"multipart/form-data"):
                return settings.max_upload_bytes
        return settings.max_body_bytes

    return limit


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the gateway. Tests pass their own settings or runtime."""
    settings = settings or (runtime.settings if runtime else get_settings())
    runtime = runtime or build_runtime(settings)
    app = FastAPI(
        title="privet",
        version=__version__,
        description="Fine-tune and serve text models on sensitive data, with differential "
        "privacy, encryption at rest and a verifiable audit log.",
    )
    app.state.runtime = runtime
    app.state.metrics_registry = CollectorRegistry()
    problems.install(app)
    for router in (health.router, projects.router, api_keys.router):
        app.include_router(router)
    app.add_middleware(
        RequestContextMiddleware,
        limit_for=_limit_for(settings),
        registry=app.state.metrics_registry,
    )
    return app
