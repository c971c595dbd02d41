"""Process state: the few maps that are one per process rather than one per Runtime.

What a running platform holds hangs off its Runtime (``privet.runtime``): settings,
engine, keys, blob store, authorizer, monitor. A few things cannot, and each is a
``ProcessRegistry`` instead, because

- they are reached from code that sees only a session, an engine or a URL:
  ``ledger.emit(session, ...)``, ``session_ledger(session)``,
  ``append_durable(engine, ...)``, ``bulk_reader(session)``, and from processes that
  build no Runtime at all (CLI commands, migrations, a worker's helpers);
- every Runtime of the process must share them: one connection pool per database URL
  (``privet.db``), one background sequencer and one group-commit writer per database, one
  file lock per SQLite file (``privet.ledger``), a signing key read once per file.

Every registry is made here, with its name and the reason it is per process, so they
can be listed (``PROCESS.registries``) and emptied together: ``reset_process_state()``
stops the registries that hold threads first (a sequencer or an appender writes through
an engine), then closes the rest, newest first. Tests call it between databases. After a
fork the child gets fresh locks, and the registries marked ``clear_after_fork`` (threads
and file descriptors of the parent) start empty.

Not here: the inference metrics (one set per Prometheus registry, for as long as that
registry lives: a registry refuses a metric name twice, so they cannot be forgotten) and
the list of commit hooks (``privet.ledger.emit``), whose sequencers add and remove
themselves.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

__all__ = ["PROCESS", "ProcessRegistry", "ProcessState", "reset_process_state"]

K = TypeVar("K")
V = TypeVar("V")

_MISSING: Any = object()


class ProcessState:
    """Every ``ProcessRegistry`` of this process, in the order they were made."""

    def __init__(self) -> None:
        self.registries: list[ProcessRegistry[Any, Any]] = []

    def reset(self) -> None:
        """Stop what runs threads, then close and forget everything (newest first)."""
        newest_first = list(reversed(self.registries))
        for registry in [r for r in newest_first if r.threads]:
            registry.reset()
        for registry in [r for r in newest_first if not r.threads]:
            registry.reset()

    def after_fork_in_child(self) -> None:
        for registry in self.registries:
            registry.after_fork_in_child()


PROCESS = ProcessState()


class ProcessRegistry(Generic[K, V]):
    """A map shared by the whole process, guarded by a lock (reads take none)."""

    def __init__(
        self,
        name: str,
        *,
        why: str,
        close: Callable[[V], None] | None = None,
        threads: bool = False,
        clear_after_fork: bool = False,
    ) -> None:
        self.name = name
        self.why = why
        self.threads = threads
        self.clear_after_fork = clear_after_fork
        self._close = close
        self._lock = threading.Lock()
        self._items: dict[K, V] = {}
        PROCESS.registries.append(self)

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def get_or_create(
        self, key: K, make: Callable[[], V], *, stale: Callable[[V], bool] | None = None
    ) -> V:
        """The value of ``key``; ``make()`` makes it (under the lock, once) when there is
        none or the one there is ``stale``."""
        found = self._items.get(key, _MISSING)
        if found is not _MISSING and not (stale is not None and stale(found)):
            return cast(V, found)
        with self._lock:
            found = self._items.get(key, _MISSING)
            if found is _MISSING or (stale is not None and stale(found)):
                found = self._items[key] = make()
            return cast(V, found)

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._items.pop(key, None)

    def take_all(self) -> list[V]:
        """Remove every value and return them (the caller closes them)."""
        with self._lock:
            values = list(self._items.values())
            self._items.clear()
        return values

    def reset(self) -> None:
        """Forget every value, closing each (``close``) once it is out of the map."""
        for value in self.take_all():
            if self._close is not None:
                self._close(value)

    def after_fork_in_child(self) -> None:
        # A lock held by another thread at the fork stays held in the child forever.
        self._lock = threading.Lock()
        if self.clear_after_fork:
            self._items.clear()


def reset_process_state() -> None:
    """Stop and forget every per-process registry (tests, between databases)."""
    PROCESS.reset()


os.register_at_fork(after_in_child=PROCESS.after_fork_in_child)
