"""Dynamic batching: concurrent requests share forward passes.

Request threads call ``submit(items)`` and block; one worker thread per batcher takes
whatever is queued (up to ``max_items`` texts), waits at most ``max_wait_s`` after the
first arrival for more, runs one forward pass and hands each caller its slice. Under load
the queue fills while the model runs, so batches grow by themselves; an idle server adds
at most ``max_wait_s`` to a lone request.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosedError(RuntimeError):
    pass


@dataclass
class _Job(Generic[T, R]):
    items: Sequence[T]
    future: Future[list[R]] = field(default_factory=Future)


class MicroBatcher(Generic[T, R]):
    """Combine concurrent ``submit`` calls into batches for ``fn`` (run on one thread)."""

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        *,
        max_items: int = 64,
        max_wait_s: float = 0.002,
        name: str = "privet-batcher",
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.fn = fn
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._queue: deque[_Job[T, R]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[T], timeout: float | None = None) -> list[R]:
        """Results for ``items``, in order (blocks; raises what ``fn`` raised)."""
        if not items:
            return []
        jobs = [
            _Job[T, R](items[i : i + self.max_items]) for i in range(0, len(items), self.max_items)
        ]
        with self._cond:
            if self._closed:
                raise BatcherClosedError("the batcher is closed")
            self._queue.extend(jobs)
            self._cond.notify()
        results: list[R] = []
        for job in jobs:
            results.extend(job.future.result(timeout=timeout))
        return results

    def _take(self) -> list[_Job[T, R]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            deadline = time.monotonic() + self.max_wait_s
            while True:
                queued = sum(len(j.items) for j in self._queue)
                remaining = deadline - time.monotonic()
                if queued >= self.max_items or remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            taken: list[_Job[T, R]] = []
            count = 0
            while self._queue and count + len(self._queue[0].items) <= self.max_items:
                job = self._queue.popleft()
                taken.append(job)
                count += len(job.items)
            return taken

    def _run(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            if not live:
                continue
            flat: list[T] = [item for job in live for item in job.items]
            try:
                out = self.fn(flat)
                if len(out) != len(flat):
                    raise RuntimeError(f"batch function returned {len(out)} for {len(flat)}")
            except BaseException as exc:
                for job in live:
                    job.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(live), len(flat))
            offset = 0
            for job in live:
                job.future.set_result(out[offset : offset + len(job.items)])
                offset += len(job.items)

    def close(self, wait: bool = True) -> None:
        """Stop accepting work; queued work still completes."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)
