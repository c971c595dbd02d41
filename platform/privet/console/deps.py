"""What every console page uses: the signed-in viewer, the guard, the CSRF check, render.

A page's guard is the API's (`privet.api.deps.action`): the same Cedar decision, recorded
in the ledger the same way, with the identity taken from the console session instead of
an Authorization header.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from privet.api.deps import Guard, Resource, RuntimeDep, action
from privet.auth import web_sessions
from privet.auth.identity import Identity
from privet.auth.settings import get_console_session_settings
from privet.console.security import SAFE_METHODS
from privet.db import session_scope
from privet.kit.errors import ForbiddenError, InvalidInputError, UnauthenticatedError
from privet.kit.ids import utcnow

HERE = Path(__file__).parent
STATIC = HERE / "static"
COOKIE = "privet_session"
SIGNIN_COOKIE = "privet_signin"
OIDC_COOKIE = "privet_oidc"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

#: Autoescape on for every template: a name a user typed is text, never markup.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


@lru_cache(maxsize=64)
def integrity(name: str) -> str:
    """The sha384 subresource-integrity value of a file under static/."""
    data = (STATIC / name).read_bytes()
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


templates.env.globals["integrity"] = integrity


class CsrfError(ForbiddenError):
    slug = "csrf"
    title = "Form refused"


def console_identity(request: Request, runtime: RuntimeDep) -> Identity:
    """The viewer behind the session cookie (401: the page sends them to sign in)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise UnauthenticatedError("no console session: sign in")
    now = utcnow()
    with session_scope(runtime.engine) as session:
        signed = web_sessions.resolve(
            session, token=token, settings=get_console_session_settings(), now=now
        )
        web_sessions.touch(session, row=signed.row, now=now)
    request.state.console_token = token
    request.state.console_session_id = signed.row.id
    request.state.principal_id = signed.identity.principal_id
    request.state.viewer = signed.identity
    return signed.identity


ViewerDep = Annotated[Identity, Depends(console_identity)]


def page(name: str) -> Any:
    """The guard of a console page or action: the API's `action`, the viewer from the
    session. Every view is a Cedar decision and a ledger event."""
    return action(name, identity_from=console_identity)


async def csrf_checked(request: Request) -> None:
    """Unsafe methods carry the session's CSRF token (form field or X-CSRF-Token header).
    The Origin was already checked by the middleware."""
    if request.method in SAFE_METHODS:
        return
    token = request.cookies.get(COOKIE)
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if token is None or not web_sessions.csrf_matches(token, presented):
        raise CsrfError(
            "refused by the console's CSRF check: the form carries no valid token for this "
            "session (reload the page and submit it again)"
        )


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page in the layout, with the viewer and the CSRF token of their session."""
    token = getattr(request.state, "console_token", None)
    full = {
        "viewer": getattr(request.state, "viewer", None),
        "csrf": web_sessions.csrf_token(token) if token else None,
        "path": request.url.path,
        **(context or {}),
    }
    return templates.TemplateResponse(request, template, full, status_code=status_code)


def also(guard: Guard, name: str) -> Guard:
    """Another decision in the same request (a page's panel): same viewer, same ledger."""
    return dataclasses.replace(guard, action=name, checked=False)


def permits(guard: Guard, resource: Resource, context: dict[str, Any] | None = None) -> bool:
    """Check without raising: a panel or form the viewer may not see or use is left out
    (the denial is in the ledger like any other). ``context``: the action's facts, where
    its policies read some (a form decides on a request every data rule accepts)."""
    try:
        guard.check(resource, context)
    except ForbiddenError:
        return False
    return True


Schema = TypeVar("Schema", bound=BaseModel)


def validated(schema: type[Schema], fields: Mapping[str, Any], *, refused: str) -> Schema:
    """A form's fields as the API's request schema; a field the schema refuses is a 422
    page naming the field and its rule (``refused``: what was not done), never a 500."""
    try:
        return schema.model_validate(dict(fields))
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'request'}: {e.get('msg', '')}"
            for e in error.errors()
        )
        raise InvalidInputError(f"{refused}: {reasons}") from None


def as_attachment(answer: Response) -> Response:
    """An API document served by the console as a download, never shown inline: no
    document is shown under a CSP weaker than the console's."""
    disposition = answer.headers.get("content-disposition", "")
    answer.headers["content-disposition"] = disposition.replace("inline;", "attachment;")
    return answer
