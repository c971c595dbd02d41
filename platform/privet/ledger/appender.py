"""Group commit: durable stand-alone appends, many per transaction.

``emit`` writes an event in the caller's transaction, so the event commits with the state
change it records. Some events have no state change to ride with: the authorization
decision of a read-only request, or of a request whose transaction rolled back (a denial,
a 404). Committing each of those in a transaction of its own costs one durable commit (one
fsync) per event, and the disk's fsync rate then caps appends/s. The appender batches them
instead, the way Tessera's ``Add`` does (it returns a future that resolves once the entry
is durable):

* a caller (any thread) calls ``append_durable(engine, spec)`` (or ``submit`` for a
  future); the event is validated and canonically encoded in the caller's thread, so a bad
  event fails its own caller with ``LedgerEventError`` and never joins a batch;
* one writer thread per engine and process takes whatever is queued, in arrival order (up
  to ``PRIVET_LEDGER_GROUP_COMMIT_MAX_BATCH`` events), inserts all of it with the same
  ``insert_entries`` statement ``emit_many`` uses, in ONE transaction, commits (one durable
  commit), and only then resolves every caller's future with its entry ids;
* if the transaction fails, it rolls back as a whole and every caller of that batch gets a
  ``LedgerAppendError`` (caused by the database's error); the next batch is independent.

The appender writes only ``ledger_entries`` rows, exactly as ``emit`` does: the sequencer
integrates them like any other committed entry, so group commit cannot fork the tree or
skip or duplicate an index (docs/LEDGER.md, section 2). A caller never holds a database
transaction while it waits (on SQLite that would hold the write lock the writer needs).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from privet.kit.process_state import ProcessRegistry
from privet.ledger.emit import (
    EventSpec,
    encode_events,
    insert_entries,
    ledger_write_lock,
    notify_events_committed,
)
from privet.ledger.settings import LedgerSettings, get_ledger_settings

__all__ = [
    "AppenderClosed",
    "GroupCommitAppender",
    "LedgerAppendError",
    "PendingAppend",
    "append_durable",
    "append_durable_many",
    "append_durable_many_async",
    "get_appender",
    "start_appender",
    "stop_appender",
]

log = logging.getLogger(__name__)

#: A lazily started writer thread exits after this long without work (it restarts on the
#: next append), so engines that are no longer used leave no thread behind.
IDLE_EXIT_S = 30.0


class LedgerAppendError(RuntimeError):
    """The group commit holding this append failed and rolled back: the event was not
    written (nor was any other event of that batch). ``__cause__`` is the database's error."""


class AppenderClosed(RuntimeError):
    """The appender was stopped; ``append_durable`` then uses a fresh one."""


class PendingAppend:
    """One caller's events (written together, in one batch, in this order) and, once the
    batch's transaction has ended, their entry ids or the error. A future reduced to what
    the appender needs: one lock the caller waits on and the writer releases (a
    ``concurrent.futures.Future`` costs several times more per append)."""

    __slots__ = ("_callbacks", "_done", "_error", "_ids", "rows")

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self._ids: list[int] | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._done = threading.Lock()
        self._done.acquire()

    def done(self) -> bool:
        return not self._done.locked()

    def result(self, timeout: float | None = None) -> list[int]:
        """The entry ids once durable; raises the batch's ``LedgerAppendError``, or
        ``TimeoutError`` if the batch has not ended within ``timeout`` seconds."""
        if not self._done.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            raise TimeoutError("the ledger append has not been committed yet")
        self._done.release()  # later calls (and other waiters) pass straight through
        if self._error is not None:
            raise self._error
        assert self._ids is not None
        return self._ids

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (no arguments, in the writer's thread or this one) once the
        batch has ended; at once if it has. It may be called twice: make it idempotent."""
        self._callbacks.append(callback)
        if self.done():  # resolved meanwhile: _resolve may have missed it
            callback()

    def _resolve(self, ids: list[int] | None, error: BaseException | None = None) -> None:
        self._ids, self._error = ids, error
        self._done.release()
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # a waiter's loop closed: nothing left to tell
                log.debug("ledger append callback failed", exc_info=True)


class GroupCommitAppender:
    """A batching writer for one engine: see the module docstring.

    ``start=False`` keeps appends queued until ``start()`` (tests use it to build a batch
    of a known shape); otherwise the writer thread starts on the first append.
    """

    def __init__(
        self,
        engine: Engine,
        settings: LedgerSettings | None = None,
        *,
        start: bool = True,
        idle_exit_s: float = IDLE_EXIT_S,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_ledger_settings()
        self.idle_exit_s = idle_exit_s
        self._cond = threading.Condition(threading.Lock())  # not re-entrant: cheaper
        self._queue: deque[PendingAppend] = deque()
        self._queued_events = 0
        self._thread: threading.Thread | None = None
        self._autostart = start
        self._closed = False
        self._conn: Connection | None = None
        #: counters (read without the lock: for reports and tests)
        self.batches = 0
        self.appended = 0
        self.failed_batches = 0
        self.largest_batch = 0

    @property
    def closed(self) -> bool:
        return self._closed

    # -- callers -------------------------------------------------------------------------

    def submit(self, events: Sequence[EventSpec]) -> PendingAppend:
        """Queue ``events`` (written together, in order, in one transaction); the returned
        handle's ``result()`` gives their entry ids once that transaction has committed, or
        raises a ``LedgerAppendError``. Raises ``LedgerEventError`` at once for a bad event and
        ``AppenderClosed`` after ``stop()``."""
        pending = PendingAppend(encode_events(events))
        if not pending.rows:
            pending._resolve([])
            return pending
        with self._cond:
            if self._closed:
                raise AppenderClosed("the ledger appender was stopped")
            self._queue.append(pending)
            self._queued_events += len(pending.rows)
            if self._thread is None and self._autostart:
                self._start_thread()
            self._cond.notify()
        return pending

    def append(self, events: Sequence[EventSpec], timeout: float | None = None) -> list[int]:
        """``submit`` and wait: the events are durable when this returns."""
        pending = self.submit(events)
        wait = self.settings.append_timeout_s if timeout is None else timeout
        try:
            return pending.result(wait)
        except TimeoutError:
            raise TimeoutError(
                f"ledger append not committed after {wait:g}s (PRIVET_LEDGER_APPEND_TIMEOUT_S); "
                "it may still be written"
            ) from None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer (and start it again on demand after it idles out)."""
        with self._cond:
            if self._closed:
                raise AppenderClosed("the ledger appender was stopped")
            self._autostart = True
            if self._thread is None:
                self._start_thread()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Refuse new appends, write everything already queued, then stop the writer."""
        with self._cond:
            self._closed = True
            if self._queue and self._thread is None:
                self._start_thread()  # drain what a held appender queued
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("ledger appender did not drain within %ss", timeout)

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="privet-ledger-appender", daemon=True)
        self._thread = thread
        thread.start()

    # -- the writer ----------------------------------------------------------------------

    def _take(self) -> list[PendingAppend]:
        """Units in arrival order, up to max_batch events (one oversized unit alone)."""
        limit = self.settings.group_commit_max_batch
        batch: list[PendingAppend] = []
        count = 0
        while self._queue:
            n = len(self._queue[0].rows)
            if batch and count + n > limit:
                break
            batch.append(self._queue.popleft())
            count += n
        self._queued_events -= count
        return batch

    def _run(self) -> None:
        linger = self.settings.group_commit_linger_s
        limit = self.settings.group_commit_max_batch
        while True:
            with self._cond:
                idle_until = time.monotonic() + self.idle_exit_s
                while not self._queue:
                    if self._closed or idle_until <= time.monotonic():
                        # stopped, or idle: exit (the next submit starts a new writer)
                        self._thread = None
                        self._drop_connection()
                        return
                    left = idle_until - time.monotonic()
                    self._cond.wait(left)
                if linger > 0 and not self._closed:
                    until = time.monotonic() + linger
                    while self._queued_events < limit and not self._closed:
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                batch = self._take()
            self._write(batch)

    def _connection(self) -> Connection:
        """The writer's own connection, kept between batches: checking one out of the pool
        per batch costs a pre-ping round trip on PostgreSQL and more CPU than the batch's
        insert. Dropped after any failure and when the writer stops."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop_connection()
            self._conn = self.engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing the appender's connection failed", exc_info=True)

    def _insert_and_commit(self, rows: list[dict[str, Any]]) -> list[int]:
        """One transaction: insert every row, commit. A connection found dead before the
        COMMIT was sent (the server restarted, an idle connection was cut) is replaced and
        the batch tried once more: nothing of it can have been committed. A failure of the
        COMMIT itself is never retried (its outcome is unknown)."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                transaction = conn.begin()
                ids = insert_entries(conn, rows)
                if len(ids) != len(rows):  # never expected: fail the batch, write nothing
                    raise RuntimeError(f"inserted {len(rows)} entries but got {len(ids)} ids")
            except DBAPIError as exc:
                self._drop_connection()
                if attempt == 1 and exc.connection_invalidated:
                    log.info("ledger appender: connection lost before commit; reconnecting")
                    continue
                raise
            except BaseException:
                self._drop_connection()
                raise
            try:
                transaction.commit()
            except BaseException:
                self._drop_connection()
                raise
            return ids
        raise AssertionError("unreachable")

    def _write(self, batch: list[PendingAppend]) -> None:
        rows = [row for unit in batch for row in unit.rows]
        try:
            # One transaction on a bare Connection (an ORM Session adds a few hundred
            # microseconds per transaction and nothing the appender needs).
            with ledger_write_lock(self.engine):
                ids = self._insert_and_commit(rows)
            # committed: every event of the batch is durable now
        except BaseException as exc:
            self.failed_batches += 1
            log.warning("ledger group commit of %d events failed: %r", len(rows), exc)
            for unit in batch:
                err = LedgerAppendError(
                    f"the ledger group commit of {len(rows)} events failed and was rolled "
                    f"back; this append was not written: {exc!r}"
                )
                err.__cause__ = exc
                unit._resolve(None, err)
            if not isinstance(exc, Exception):
                raise
            return
        notify_events_committed()
        self.batches += 1
        self.appended += len(rows)
        self.largest_batch = max(self.largest_batch, len(rows))
        at = 0
        for unit in batch:
            n = len(unit.rows)
            unit._resolve(ids[at : at + n])
            at += n


# --- one appender per engine and process ------------------------------------------------

_appenders: ProcessRegistry[int, tuple[Engine, GroupCommitAppender]] = ProcessRegistry(
    "ledger.appenders",
    why="one group-commit writer per engine and process, reached from an engine alone "
    "(append_durable) by every Runtime and request of the process",
    close=lambda hit: hit[1].stop(30.0),
    threads=True,
    clear_after_fork=True,  # the parent's writer threads do not exist in a forked child
)


def get_appender(engine: Engine) -> GroupCommitAppender:
    """This process's appender for ``engine`` (created on first use; its writer thread
    starts on the first append)."""
    return _appenders.get_or_create(
        id(engine),
        lambda: (engine, GroupCommitAppender(engine)),
        stale=lambda hit: hit[0] is not engine or hit[1].closed,
    )[1]


def append_durable_many(
    engine: Engine, events: Sequence[EventSpec], *, timeout: float | None = None
) -> list[int]:
    """Append ``events`` (together, in order, in one transaction of the group commit) and
    return their entry ids once they are durable. Never call it while this thread holds an
    open write transaction on the same database: on SQLite the writer would wait for that
    transaction's lock."""
    try:
        return get_appender(engine).append(events, timeout)
    except AppenderClosed:  # stopped between lookup and submit: use a fresh one
        return get_appender(engine).append(events, timeout)


async def append_durable_many_async(
    engine: Engine, events: Sequence[EventSpec], *, timeout: float | None = None
) -> list[int]:
    """``append_durable_many`` for an event loop: the events are queued at once and the
    caller awaits their group commit without holding a thread while the disk syncs."""
    appender = get_appender(engine)
    try:
        pending = appender.submit(events)
    except AppenderClosed:  # stopped between lookup and submit: use a fresh one
        appender = get_appender(engine)
        pending = appender.submit(events)
    if not pending.done():
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def wake() -> None:
            if not finished.done():
                finished.set_result(None)

        def wake_soon() -> None:
            loop.call_soon_threadsafe(wake)

        pending.add_done_callback(wake_soon)
        wait = appender.settings.append_timeout_s if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(finished), wait)
        except TimeoutError:
            raise TimeoutError(
                f"ledger append not committed after {wait:g}s (PRIVET_LEDGER_APPEND_TIMEOUT_S); "
                "it may still be written"
            ) from None
    return pending.result(0)


def append_durable(engine: Engine, event: EventSpec, *, timeout: float | None = None) -> int:
    """Append one event through the group commit; its entry id once it is durable."""
    return append_durable_many(engine, [event], timeout=timeout)[0]


def start_appender(engine: Engine) -> GroupCommitAppender:
    """Start this process's appender for ``engine`` (the server's lifespan calls it)."""
    appender = get_appender(engine)
    appender.start()
    return appender


def stop_appender(engine: Engine | None = None, timeout: float | None = 30.0) -> None:
    """Drain and stop the appender of ``engine`` (all of them when None). Appends made
    afterwards start a new one."""
    if engine is None:
        stopping = [a for _, a in _appenders.take_all()]
    else:
        hit = _appenders.pop(id(engine))
        stopping = [hit[1]] if hit is not None and hit[0] is engine else []
    for appender in stopping:
        appender.stop(timeout)


atexit.register(stop_appender)
