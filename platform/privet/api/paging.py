"""The HTTP side of keyset paging (privet.kit.paging) for lists that answer a bare JSON
array: the array stays as it was (clients that read it keep working), the page's size is
``limit``, and the next page's address is in the ``Link`` header (RFC 8288, ``rel="next"``,
with the opaque cursor as ``after=``); no header means the last page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Query, Request, Response

from privet.api.deps import QueryInt
from privet.kit.paging import MAX_PAGE

AfterQuery = Annotated[
    str | None,
    Query(description="The cursor of the next page, from the previous page's Link header."),
]
LimitQuery = Annotated[QueryInt, Query(ge=1, le=MAX_PAGE, description="Rows per page.")]

NEXT_LINK: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "Link": {
                "description": 'The next page: `<path?...&after=CURSOR>; rel="next"`; '
                "absent on the last page.",
                "schema": {"type": "string"},
            }
        }
    }
}
"""OpenAPI ``responses`` of a route that answers a page with ``link_next``."""


def next_page(request: Request, cursor: str | None, **fixed: str) -> str | None:
    """The address of the next page (same path and filters, those of ``fixed`` set,
    ``after=cursor``); None on the last page."""
    if cursor is None:
        return None
    params = {**request.query_params, **fixed, "after": cursor}
    path = quote(request.url.path, safe="/:@")  # percent-encoded: nothing breaks the header
    return f"{path}?{urlencode(params)}"


def link_next(request: Request, response: Response, cursor: str | None) -> None:
    """Point the response at the next page (same filters, ``after=cursor``)."""
    address = next_page(request, cursor)
    if address is not None:
        response.headers["Link"] = f'<{address}>; rel="next"'
