"""What every console response carries and what every unsafe request must show.

Headers: a strict Content-Security-Policy (no inline script or style, nothing from
another origin, no framing), nosniff, no referrer. Unsafe methods: the request's Origin
must be the console's own origin (a form posted from another site is refused before any
handler runs); the CSRF token is checked by the route's dependency (``deps.csrf_checked``).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def own_origin(scope: Scope) -> str:
    """scheme://host[:port] as the browser addressed this server."""
    host = ""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    return f"{scope.get('scheme', 'http')}://{host}"


def origin_refusal(scope: Scope) -> str | None:
    """Why an unsafe request is refused as cross-origin, or None when it is this console's.

    The Origin header must be this console's. Under ``Referrer-Policy: no-referrer`` a
    browser sends ``Origin: null`` for a same-origin form post, so an absent or null Origin
    is accepted only with ``Sec-Fetch-Site: same-origin`` (a header no page can set)."""
    headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in _ORIGIN_HEADERS}
    origin = headers.get(b"origin")
    if origin == own_origin(scope):
        return None
    if origin in (None, "null") and headers.get(b"sec-fetch-site") == "same-origin":
        return None
    if origin in (None, "null"):
        return (
            "refused by the console's origin check: the request does not show that it came "
            "from this console (no Origin, no Sec-Fetch-Site: same-origin)"
        )
    return (
        f"refused by the console's origin check: the form was posted from {origin[:100]!r}, "
        "not from this console"
    )


_ORIGIN_HEADERS = frozenset({b"origin", b"sec-fetch-site"})


class ConsoleSecurityMiddleware:
    """Security headers on every console response; the Origin check on unsafe methods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k not in _OURS]
                message["headers"] = [*kept, *HEADERS]
            await send(message)

        if scope["method"] not in SAFE_METHODS:
            why = origin_refusal(scope)
            if why is not None:
                await _refuse(send_with_headers, why)
                return
        await self.app(scope, receive, send_with_headers)


_OURS = frozenset(name for name, _ in HEADERS)


async def _refuse(send: Send, why: str) -> None:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Refused · privet</title></head><body><main><h1>Request refused</h1><p>"
        + _escape(why)
        + "</p></main></body></html>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def json_attr(value: object) -> str:
    """JSON for an HTML attribute (autoescaped by the template)."""
    return json.dumps(value, separators=(",", ":"))
