"""The console application (mounted by the gateway at /) and its error pages."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from privet.console import pages
from privet.console.deps import COOKIE, STATIC, render
from privet.console.security import ConsoleSecurityMiddleware
from privet.kit.errors import PrivetError, UnauthenticatedError
from privet.runtime import Runtime


def create_console(runtime: Runtime) -> FastAPI:
    """The console's pages, static assets and error pages over ``runtime``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    for router in pages.ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(UnauthenticatedError, _unauthenticated)  # type: ignore[arg-type]
    app.add_exception_handler(PrivetError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(ConsoleSecurityMiddleware)
    return app


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _unauthenticated(request: Request, error: UnauthenticatedError) -> Response:
    """No live session: a page sends the browser to sign in (and back afterwards)."""
    target = "/sign-in?next=" + quote(request.url.path, safe="/")
    if request.method == "GET" and not _is_htmx(request):
        response: Response = RedirectResponse(target, status_code=303)
    else:
        response = render(
            request, "error.html", {"title": "Signed out", "error": error}, status_code=401
        )
        response.headers["HX-Redirect"] = target
    if request.cookies.get(COOKIE):
        response.delete_cookie(COOKIE, path="/")
    return response


def _refused(request: Request, error: PrivetError) -> HTMLResponse:
    """403: the rule that refused and why (the decision is already in the ledger)."""
    title = "Not allowed" if error.status == 403 else error.title
    return render(request, "error.html", {"title": title, "error": error}, status_code=error.status)


def _invalid(request: Request, error: RequestValidationError) -> HTMLResponse:
    fields = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', '')}"
        for e in error.errors()
    ]
    problem = PrivetError("the form was not accepted: " + "; ".join(fields))
    return render(
        request, "error.html", {"title": "Invalid input", "error": problem}, status_code=422
    )


def _http_error(request: Request, error: StarletteHTTPException) -> HTMLResponse:
    problem = PrivetError(str(error.detail))
    return render(
        request,
        "error.html",
        {"title": "Not found" if error.status_code == 404 else "Error", "error": problem},
        status_code=error.status_code,
    )
