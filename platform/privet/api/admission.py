"""First come, first served admission of the API requests that work at once
(PRIVET_ACTIVE_REQUESTS).

A request with a database session (every route with a decision) takes a slot before its
first blocking step and gives it back once its transaction has ended, before it awaits the
group commit; the others wait for one, in arrival order, on the event loop, holding no
thread. Without it every request in flight ran its four thread-pool steps at once on
anyio's 40 threads, with the ledger's group-commit writer and the event loop contending
for the interpreter lock: at 64 clients on SQLite a step waited 6-12 ms for its thread and
the group commit's p99 was 100-340 ms; with 8 slots mostly 3-4 ms and 59-77 ms
(docs/SCALING.md, issue 23). Bounding the thread pool itself instead would deadlock
SQLite: a writing request holds the write lock from its endpoint to its commit, two
thread-pool steps apart, while the requests blocked on that lock hold the threads.
Admitted requests stay below the thread pool, so an admitted one always finds a thread
for its next step.
"""

from __future__ import annotations

import anyio


class RequestAdmission:
    """``slots`` requests at work at once; the rest queue in arrival order."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore = anyio.Semaphore(slots, fast_acquire=True)

    async def enter(self) -> Slot:
        """Wait for a slot (first come, first served)."""
        await self._semaphore.acquire()
        return Slot(self._semaphore)

    @property
    def waiting(self) -> int:
        """Requests queued for a slot now."""
        return self._semaphore.statistics().tasks_waiting


class Slot:
    """One admitted request's slot; ``leave`` gives it back once (later calls do nothing)."""

    __slots__ = ("_semaphore",)

    def __init__(self, semaphore: anyio.Semaphore | None) -> None:
        self._semaphore = semaphore

    def leave(self) -> None:
        semaphore, self._semaphore = self._semaphore, None
        if semaphore is not None:
            semaphore.release()


#: The slot of a request that is not admitted (``privet.api.deps.streams_request_body``).
NO_SLOT = Slot(None)
