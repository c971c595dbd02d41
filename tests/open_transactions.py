"""Which threads hold an open database transaction, watched through the engine's own
events: how the tests prove that no transaction is open during a forward pass (serving,
explanations, monitoring references)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event


class OpenTransactions:
    """Which threads hold an open database transaction on ``engine`` now, the ledger's
    own background writers aside (they are not the request's). Transactions of the
    engine's read-only variant (``privet.db.read_only``) count too: its events reach the
    engine's listeners."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.open: dict[int, str] = {}  # id(connection) -> thread name

    def _begin(self, conn: Any) -> None:
        with self.lock:
            self.open[id(conn)] = threading.current_thread().name

    def _end(self, conn: Any) -> None:
        with self.lock:
            self.open.pop(id(conn), None)

    def now(self) -> list[str]:
        with self.lock:
            return [n for n in self.open.values() if not n.startswith("privet-ledger")]

    def __enter__(self) -> OpenTransactions:
        event.listen(self.engine, "begin", self._begin)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)
