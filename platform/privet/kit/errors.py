"""Domain errors. Services raise these; the gateway turns them into RFC 9457 problems.

Each error has a stable `type` slug (documented at /problems/<slug> in the API docs) so that
clients can branch on it without parsing messages.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PrivetError(Exception):
    """Base of every error a user can cause; never used for bugs."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInputError(PrivetError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class UnauthenticatedError(PrivetError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class ForbiddenError(PrivetError):
    status = 403
    slug = "forbidden"
    title = "Action not allowed"


class NotFoundError(PrivetError):
    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(PrivetError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLargeError(PrivetError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaTypeError(PrivetError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ServiceUnavailableError(PrivetError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"
