"""Sign in with an API key (the one the CLI uses) or with OIDC (authorization code +
PKCE, when PRIVET_OIDC_* is set), or by accepting an invitation (the API's accept: a new
user, their role, their own first key, shown once); sign out.

Before a session exists the sign-in form is bound to a random pre-session cookie (its
CSRF token is derived from it), so a sign-in cannot be forged from another site either.
The OIDC sign-in's pre-session cookie finds its state, nonce and PKCE verifier, kept
server-side (`privet.auth.console_oidc`); it is SameSite=Lax, since the provider's
redirect back is a cross-site navigation, and is only ever read by the callback (a GET
that changes nothing unless the state matches).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privet.api.deps import Guard, RuntimeDep
from privet.api.routes import invitations as invitations_routes
from privet.auth import console_oidc, invitations, web_sessions
from privet.auth.schemas import InvitationAccept, InvitationAccepted
from privet.auth.settings import get_console_session_settings
from privet.console.deps import (
    COOKIE,
    OIDC_COOKIE,
    SIGNIN_COOKIE,
    ViewerDep,
    csrf_checked,
    render,
)
from privet.db import session_scope
from privet.kit.errors import PrivetError, UnauthenticatedError
from privet.kit.ids import utcnow
from privet.runtime import Runtime

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of this console (never //host or a scheme): no open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _form(request: Request, *, next_path: str, error: str | None, status: int) -> HTMLResponse:
    context = {"next_path": next_path, "oidc": _oidc_client(request.app.state.runtime) is not None}
    return _pre_session_form(request, "signin.html", "Sign in", context, error, status)


def _pre_session_form(
    request: Request,
    template: str,
    title: str,
    context: dict[str, object],
    error: str | None,
    status: int,
) -> HTMLResponse:
    """A form for someone not signed in yet, bound to a new pre-session cookie."""
    pre = secrets.token_urlsafe(24)
    response = render(
        request,
        template,
        {"title": title, "signin_csrf": web_sessions.csrf_token(pre), "error": error, **context},
        status_code=status,
    )
    _set_cookie(request, response, SIGNIN_COOKIE, pre, path="/sign-in")
    return response


def _set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    path: str,
    samesite: Literal["strict", "lax"] = "strict",
) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        httponly=True,
        samesite=samesite,
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


def _invitation_form(request: Request, *, error: str | None, status: int) -> HTMLResponse:
    return _pre_session_form(
        request, "invitation_accept.html", "Accept an invitation", {}, error, status
    )


@router.get("/sign-in/invitation", response_class=HTMLResponse)
def invitation_form(request: Request) -> HTMLResponse:
    return _invitation_form(request, error=None, status=200)


@router.post("/sign-in/invitation", response_class=HTMLResponse)
def accept_invitation(
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str, Form(max_length=200)],
    key_name: Annotated[str, Form(min_length=1, max_length=200)] = "console",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """The API's accept with the token typed here; then signed in with the new key, which
    this response alone shows."""
    pre = request.cookies.get(SIGNIN_COOKIE)
    if pre is None or not web_sessions.csrf_matches(pre, csrf):
        error = "refused by the console's CSRF check: reload the page and try again"
        return _invitation_form(request, error=error, status=403)
    try:
        accepted = _accept(runtime, token.strip(), key_name)
        with session_scope(runtime.engine) as session:
            cookie, _signed = web_sessions.start(
                session,
                pepper=runtime.api_key_pepper,
                api_key=accepted.api_key.key,
                settings=get_console_session_settings(),
            )
    except UnauthenticatedError as error:
        return _invitation_form(request, error=error.detail, status=401)
    response = render(
        request, "invitation_accepted.html", {"title": "Welcome", "accepted": accepted}
    )
    _set_cookie(request, response, COOKIE, cookie, path="/")
    response.delete_cookie(SIGNIN_COOKIE, path="/sign-in")
    return response


def _accept(runtime: Runtime, token: str, key_name: str) -> InvitationAccepted:
    """`POST /v1/invitations:accept` as the API runs it: the token's invitation is the
    caller, its `invitation.accept` decision a ledger event."""
    with session_scope(runtime.engine) as session:
        identity = invitations.authenticate(session, pepper=runtime.api_key_pepper, presented=token)
    with session_scope(runtime.engine) as session:
        guard = Guard(
            action="invitation.accept",
            identity=identity,
            runtime=runtime,
            session=session,
            recorded=[],
        )
        return invitations_routes.accept_invitation(
            session=session,
            identity=identity,
            runtime=runtime,
            guard=guard,
            body=InvitationAccept(key_name=key_name),
        )


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


OIDC_PATH = "/sign-in/oidc"


def _oidc_client(runtime: Runtime) -> str | None:
    """The console's OIDC client id, or None when OIDC sign-in is not configured."""
    if runtime.oidc is None:
        return None
    return runtime.settings.oidc_console_client_id or runtime.settings.oidc_client_id


def _redirect_uri(request: Request) -> str:
    return str(request.base_url).rstrip("/") + OIDC_PATH + "/callback"


@router.get(OIDC_PATH)
def oidc_begin(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    """Off to the provider with state, nonce and an S256 code challenge; the verifier
    stays here, bound to this browser's pre-session cookie."""
    client_id = _oidc_client(runtime)
    if client_id is None or runtime.oidc is None:
        return _form(
            request,
            next_path=_safe_next(next),
            error="OIDC sign-in is not configured here (PRIVET_OIDC_ISSUER, _AUDIENCE, _JWKS "
            "and a client id): sign in with an API key",
            status=404,
        )
    try:
        provider = console_oidc.discover(runtime.oidc.issuer)
    except PrivetError as error:
        return _form(request, next_path=_safe_next(next), error=error.detail, status=error.status)
    with session_scope(runtime.engine) as session:
        pre, url = console_oidc.begin(
            session,
            provider=provider,
            client_id=client_id,
            redirect_uri=_redirect_uri(request),
            next_path=_safe_next(next),
            now=utcnow(),
        )
    response = RedirectResponse(url, status_code=303)
    _set_cookie(request, response, OIDC_COOKIE, pre, path=OIDC_PATH, samesite="lax")
    return response


@router.get(OIDC_PATH + "/callback", response_class=HTMLResponse)
def oidc_callback(
    request: Request,
    runtime: RuntimeDep,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Check the state, exchange the code with the verifier, validate the ID token, and
    start a console session (the same table and ledger event as an API-key sign-in)."""
    client_id = _oidc_client(runtime)
    if client_id is None or runtime.oidc is None:
        return _form(request, next_path="/", error="OIDC sign-in is not configured", status=404)
    try:
        if error or not code:
            raise UnauthenticatedError(
                f"the OIDC provider did not sign you in ({error[:100] or 'no code'})"
            )
        token, next_path = console_oidc.finish(
            runtime.engine,
            verifier=runtime.oidc,
            provider=console_oidc.discover(runtime.oidc.issuer),
            client_id=client_id,
            redirect_uri=_redirect_uri(request),
            pre=request.cookies.get(OIDC_COOKIE),
            state=state,
            code=code,
            settings=get_console_session_settings(),
        )
    except PrivetError as refused:
        response = _form(request, next_path="/", error=refused.detail, status=refused.status)
        response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
        return response
    # A page, not a redirect: the provider's redirect chain is cross-site, and the
    # SameSite=Strict session cookie is sent from the next, same-site navigation on.
    response = render(request, "signed_in.html", {"title": "Signed in", "next_path": next_path})
    _set_cookie(request, response, COOKIE, token, path="/")
    response.delete_cookie(OIDC_COOKIE, path=OIDC_PATH)
    return response
