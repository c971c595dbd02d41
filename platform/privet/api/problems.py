"""RFC 9457 problem+json for every error the gateway returns."""

from __future__ import annotations

import errno
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from privet.kit.errors import PrivetError

PROBLEM_BASE = "https://privet.dev/problems/"
MEDIA_TYPE = "application/problem+json"

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Action not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem(
    request: Request | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem response; `instance` carries the request id so users can quote it."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        request_id = getattr(request.state, "request_id", None)
        if request_id:
            body["instance"] = f"urn:privet:request:{request_id}"
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def error_problem(
    request: Request | None, error: PrivetError, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem response of a privet error: raised (the exception handler) or returned
    by a service as a refusal that must not roll back what it recorded."""
    return problem(
        request,
        status=error.status,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        headers=headers,
        **error.extensions,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ]


async def _on_privet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PrivetError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_problem(request, exc, headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(err["type"] == "json_invalid" for err in errors):
        first = next(err for err in errors if err["type"] == "json_invalid")
        return problem(
            request,
            status=400,
            slug="malformed-json",
            title="Malformed JSON",
            detail=f"the request body is not valid JSON: {first['msg']}",
        )
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(
        request,
        status=422,
        slug="invalid-input",
        title="Invalid input",
        detail=summary,
        errors=errors,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route matches {request.method} {request.url.path}"
    return problem(
        request,
        status=exc.status_code,
        slug=slug,
        title=title,
        detail=detail,
        headers=getattr(exc, "headers", None),
    )


def _disk_full(exc: BaseException | None) -> bool:
    """Whether the failure is the server's disk filling up (ENOSPC, or SQLite's 'database or
    disk is full'), anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _database_unreachable(exc: BaseException | None) -> bool:
    """A lost or refused database connection (PostgreSQL restarting, failing over, or out
    of connections), as opposed to a bug: the client may retry. Looked for anywhere in the
    exception's chain: the ledger's group commit reports it as the cause of its own error."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OperationalError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if not _disk_full(exc) and _database_unreachable(exc):
        return problem(
            request,
            status=503,
            slug="database-unavailable",
            title="Database unavailable",
            detail="the server lost its database connection (the database is restarting or "
            "overloaded) and the request failed: retry in a few seconds",
            headers={"Retry-After": "5"},
        )
    if _disk_full(exc):
        return problem(
            request,
            status=507,
            slug="insufficient-storage",
            title="Insufficient storage",
            detail="the server ran out of disk space (PRIVET_HOME) and did not complete the "
            "request: free space on the server, then retry",
        )
    return problem(
        request,
        status=500,
        slug="internal",
        title="Internal error",
        detail="the server failed; quote the instance id when reporting it",
    )


def install(app: FastAPI) -> None:
    """Route every error through problem+json."""
    app.add_exception_handler(PrivetError, _on_privet_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
