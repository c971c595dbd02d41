"""Sign in with an API key (the one the CLI uses), sign out.

Before a session exists the sign-in form is bound to a random pre-session cookie (its
CSRF token is derived from it), so a sign-in cannot be forged from another site either.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privet.api.deps import RuntimeDep
from privet.auth import web_sessions
from privet.auth.settings import get_console_session_settings
from privet.console.deps import COOKIE, SIGNIN_COOKIE, ViewerDep, csrf_checked, render
from privet.db import session_scope
from privet.kit.errors import UnauthenticatedError
from privet.kit.ids import utcnow

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this console (never //host or a scheme): no open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _form(request: Request, *, next_path: str, error: str | None, status: int) -> HTMLResponse:
    pre = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "signin_csrf": web_sessions.csrf_token(pre),
            "next_path": next_path,
            "error": error,
        },
        status_code=status,
    )
    _set_cookie(request, response, SIGNIN_COOKIE, pre, path="/sign-in")
    return response


def _set_cookie(request: Request, response: Response, name: str, value: str, *, path: str) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _form(request, next_path=_safe_next(next), error=None, status=200)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    runtime: RuntimeDep,
    api_key: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """A new server-side session for the key's principal; the cookie holds its token."""
    target = _safe_next(next)
    pre = request.cookies.get(SIGNIN_COOKIE)
    if pre is None or not web_sessions.csrf_matches(pre, csrf):
        return _form(
            request,
            next_path=target,
            error="refused by the console's CSRF check: reload the sign-in page and try again",
            status=403,
        )
    try:
        with session_scope(runtime.engine) as session:
            token, _signed = web_sessions.start(
                session,
                pepper=runtime.api_key_pepper,
                api_key=api_key.strip(),
                settings=get_console_session_settings(),
            )
    except UnauthenticatedError as error:
        return _form(request, next_path=target, error=error.detail, status=401)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, COOKIE, token, path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out", dependencies=[Depends(csrf_checked)])
def sign_out(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    """End the session for good: the cookie, replayed, signs nobody in."""
    token = request.cookies[COOKIE]
    with session_scope(runtime.engine) as session:
        signed = web_sessions.resolve(
            session, token=token, settings=get_console_session_settings(), now=utcnow()
        )
        web_sessions.end(session, row=signed.row, actor=viewer.principal_id)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
