"""Liveness, readiness and metrics: the only routes without an authorization decision."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from privet import migrate
from privet.api.deps import RuntimeDep
from privet.kit.errors import ServiceUnavailableError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and migrated")
def readyz(runtime: RuntimeDep) -> dict[str, str]:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(runtime.engine)
    except Exception as exc:
        raise ServiceUnavailableError(
            f"the database is not reachable: {type(exc).__name__}"
        ) from exc
    head = migrate.head_revision(runtime.engine)
    if current != head:
        raise ServiceUnavailableError(
            f"the database is at migration {current!r}, this code needs {head!r}: "
            "run `privet db upgrade`"
        )
    return {"status": "ready", "migration": head or ""}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
