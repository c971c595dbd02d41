"""`in_own_thread(asyncio.run, coro)`: run an event loop on a thread of its own.

A test process that holds Playwright's sync browser (the console fixtures keep one per
xdist worker) has an event loop running on its main thread, and `asyncio.run` or
`anyio.run` there refuses to start ("cannot be called from a running event loop"), so a
test that runs its own loop must not depend on which modules its worker ran before."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_own_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a fresh thread; its result, or its exception raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="own-event-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
