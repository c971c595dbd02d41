"""Where a request's authorization decisions go on their way to the ledger: `DecisionLog`,
and the session class of an API request that carries its hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy import event as sa_event
from sqlmodel import Session

from privet import ledger

log = logging.getLogger(__name__)


class DecisionLog:
    """Where each of a request's authorization decisions is on its way to the ledger.

    A decision is an event exactly once, and durable before the response is sent:

    * **In the request's transaction** (``defer=False``, methods that change state): the
      guard emits it into the session at once, so it commits with the change. If that
      transaction rolls back (a denial, a conflict, a crash in the service), the decision
      is written again after the rollback through the group commit.
    * **Deferred** (``defer=True``, GET/HEAD/OPTIONS, and writing routes marked
      ``decides_before_writing`` that decide before long work done with no transaction
      open, such as a forward pass): the decision waits. When the session
      commits, a transaction that wrote anything takes the decisions with it (emitted just
      before its commit, so they commit with whatever the request changed); a transaction
      that wrote nothing commits nothing, and the decisions are appended durably through
      the group commit right after it (many requests' decisions per durable commit). So
      ``session.commit()`` returning still means "the decisions so far are durable", which
      the routes that commit early (exports) rely on. Whether a transaction wrote is asked
      of the database, not guessed from the method: SQLite's ``total_changes`` against its
      value when the transaction began, PostgreSQL's ``pg_current_xact_id_if_assigned()``
      (a transaction gets an xid with its first write).

    Group-commit appends happen only once the session's transaction has ended, never while
    it holds SQLite's write lock (the appender needs it).
    """

    def __init__(self, engine: Engine, *, defer: bool) -> None:
        self.engine = engine
        self.defer = defer
        #: decided, in no transaction yet (deferred, or rolled back)
        self.pending: list[ledger.EventSpec] = []
        #: emitted into the session's open (root) transaction, not committed yet
        self.in_transaction: list[ledger.EventSpec] = []
        self._root_began = False
        self._changes_at_begin: int | None = None
        self._committed_root: Any = None
        #: False for the request's own last commit (get_session): its caller then appends
        #: what is pending itself, awaiting the group commit on the event loop
        self.write_on_commit = True

    def attach(self, session: Session) -> None:
        """Follow ``session``'s transactions. A `RequestSession` has the hooks on its class
        (listening per instance costs more than a cheap request); any other session gets
        them on the instance."""
        session.info[_DECISION_LOG] = self
        if not isinstance(session, RequestSession):
            for name, hook in _SESSION_HOOKS:
                sa_event.listen(session, name, hook)

    def record(self, session: Session, event: ledger.EventSpec) -> None:
        if self.defer:
            self.pending.append(event)
        else:
            ledger.emit_many(session, [event])
            self.in_transaction.append(event)

    def write_outstanding(self) -> None:
        """Append every decision not committed yet, durably (group commit); the request's
        transaction must have ended. Raises if the ledger cannot take them."""
        events = self.in_transaction + self.pending  # in_transaction: only after a failure
        self.in_transaction, self.pending = [], []
        if events:
            try:
                ledger.append_durable_many(self.engine, events)
            except BaseException:
                self.pending = events + self.pending
                raise

    async def write_outstanding_async(self) -> None:
        """`write_outstanding` awaited on the event loop: no thread waits for the disk."""
        events = self.in_transaction + self.pending
        self.in_transaction, self.pending = [], []
        if events:
            try:
                await ledger.append_durable_many_async(self.engine, events)
            except BaseException:
                self.pending = events + self.pending
                raise

    # -- session events ------------------------------------------------------------------

    def _after_begin(self, session: Session, transaction: Any, connection: Any) -> None:
        if transaction.parent is not None:
            return
        self._root_began = True
        if connection.dialect.name == "sqlite":
            self._changes_at_begin = connection.connection.driver_connection.total_changes

    def _wrote(self, session: Session) -> bool:
        """Has the open root transaction changed anything in the database?"""
        if not self._root_began:  # the transaction ran no SQL at all
            return False
        conn = session.connection()
        if conn.dialect.name == "sqlite":
            total = conn.connection.driver_connection.total_changes  # type: ignore[union-attr]
            return self._changes_at_begin is None or total != self._changes_at_begin
        return bool(conn.execute(_XID_ASSIGNED).scalar_one())

    def _before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint: nothing is durable yet
            return
        if not self.pending:
            return
        session.flush()
        if self._wrote(session):
            ledger.emit_many(session, self.pending)
            self.in_transaction, self.pending = self.pending, []

    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return
        self._committed_root = session.get_transaction()
        self.in_transaction = []  # committed with the transaction
        if self.pending and self.write_on_commit:
            try:  # the transaction wrote nothing: the decisions go through the group commit
                self.write_outstanding()
            except Exception:  # kept pending; get_session tries again and fails the request
                log.exception("could not append authorization decisions after commit")

    def _after_transaction_end(self, session: Session, transaction: Any) -> None:
        if transaction.parent is not None:
            return
        if transaction is not self._committed_root and self.in_transaction:
            # the root transaction ended without committing: its decisions were not written
            self.pending[:0] = self.in_transaction
            self.in_transaction = []
        self._committed_root = None
        self._root_began = False
        self._changes_at_begin = None


_XID_ASSIGNED = text("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
_DECISION_LOG = "privet_decision_log"


def _hook(method: Callable[..., None]) -> Callable[..., None]:
    """A session event handler that forwards to the session's DecisionLog, if it has one."""

    def forward(session: Session, *args: Any) -> None:
        decision_log = session.info.get(_DECISION_LOG)
        if decision_log is not None:
            method(decision_log, session, *args)

    return forward


_SESSION_HOOKS = (
    ("after_begin", _hook(DecisionLog._after_begin)),
    ("before_commit", _hook(DecisionLog._before_commit)),
    ("after_commit", _hook(DecisionLog._after_commit)),
    ("after_transaction_end", _hook(DecisionLog._after_transaction_end)),
)


class RequestSession(Session):
    """The session of one API request: its DecisionLog's hooks are on the class."""


for _name, _forward in _SESSION_HOOKS:
    sa_event.listen(RequestSession, _name, _forward)
