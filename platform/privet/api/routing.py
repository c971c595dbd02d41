"""The API's route class: a plain ``def`` endpoint costs one thread-pool hop, not two.

FastAPI runs a plain ``def`` endpoint in the thread pool and then, for the same reason
(it cannot know the function is cheap), validates its response model in a second hop.
Validating a model the endpoint has just built is pure CPU of a few microseconds, while a
hop costs the event loop about 0.2 ms (docs/SCALING.md, item 4). ``OneHopRoute`` hands
FastAPI a coroutine that runs the endpoint in one hop, so the response is validated on
the event loop, where FastAPI already serializes it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


def in_one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as a coroutine function running it in the thread pool, if it is a plain
    function; anything else (a coroutine, a generator: FastAPI streams those) unchanged.
    ``functools.wraps`` keeps what FastAPI and the routes read: the signature and its
    annotations (through ``__wrapped__``) and the markers set on the function."""
    if not inspect.isfunction(endpoint) or (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    async def run(**arguments: Any) -> Any:
        return await run_in_threadpool(functools.partial(endpoint, **arguments))

    return run


class OneHopRoute(APIRoute):
    """The ``route_class`` of every API router (``privet.api.routes``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_one_hop(endpoint), **kwargs)
