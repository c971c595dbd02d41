"""ASGI middleware: request ids, access logs, metrics and the streaming body-size limit."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from privet.api.problems import MEDIA_TYPE, PROBLEM_BASE
from privet.kit.logs import request_id_var
from privet.kit.numbers import ascii_number

log = logging.getLogger("privet.access")
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when the streamed body passes the limit; an HTTP 413 so that
    body parsers deeper in the stack pass it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")


class RequestContextMiddleware:
    """Assigns a request id, enforces the body limit while the body streams in (chunked
    uploads without Content-Length included), logs one JSON line and counts metrics."""

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[Scope], int], registry: CollectorRegistry
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.requests = Counter(
            "privet_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "privet_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        supplied = headers.get("x-request-id", "")
        request_id = supplied if _REQUEST_ID_RE.fullmatch(supplied) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        limit = self.limit_for(scope)
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            declared = declared_length(headers.get("content-length"))
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            encoding = headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                await _send_problem(
                    send_wrapper,
                    request_id,
                    status=415,
                    slug="unsupported-media-type",
                    title="Unsupported media type",
                    detail=f"request bodies with Content-Encoding {encoding[:40]!r} are not "
                    "accepted (a compressed body could expand without bound): send the body "
                    "uncompressed; Parquet files carry their own compression",
                )
                return
            await self.app(scope, receive_wrapper, send_wrapper)
        except BodyTooLarge:
            if status_holder["started"]:
                raise
            await _send_too_large(send_wrapper, limit, request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self.requests.labels(scope["method"], route, str(status_holder["status"])).inc()
            self.latency.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status_holder["status"],
                    "ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def declared_length(value: str | None) -> int | None:
    """A Content-Length header's value: ASCII digits only (``²`` passes str.isdigit())."""
    return ascii_number(value) if value is not None else None


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


async def _send_too_large(send: Send, limit: int, request_id: str) -> None:
    await _send_problem(
        send,
        request_id,
        status=413,
        slug="payload-too-large",
        title="Payload too large",
        detail=f"the request body exceeds the limit of {limit} bytes",
        limit_bytes=limit,
    )


async def _send_problem(
    send: Send, request_id: str, *, status: int, slug: str, title: str, detail: str, **ext: Any
) -> None:
    import json

    body = json.dumps(
        {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": f"urn:privet:request:{request_id}",
            **ext,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
