"""Liveness, readiness, metrics and how to sign in: the only routes without an
authorization decision (a caller without credentials needs them; none reveals a secret)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from privet import migrate
from privet.api.deps import RuntimeDep
from privet.api.routing import OneHopRoute
from privet.auth.oidc import AuthConfigPublic, sign_in_config
from privet.kit.errors import ServiceUnavailableError

router = APIRouter(route_class=OneHopRoute, tags=["health"])


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


@router.get(
    "/v1/auth/config",
    summary="How to sign in: the OIDC issuer, audience and public client id, or null",
    response_model=AuthConfigPublic,
)
def auth_config(runtime: RuntimeDep) -> AuthConfigPublic:
    """Public: `privet login` reads it before it holds any credential (device flow)."""
    return sign_in_config(runtime.oidc, client_id=runtime.settings.oidc_client_id)
