"""API-key identities kept in memory between requests, valid while the epoch holds.

Authenticating a key reads its row, its principal and the principal's bindings. A cached
entry skips those three reads: it is found by the key's HMAC digest (so only the holder of
the key finds it), used only while the database's auth epoch equals the epoch it was read
under (`privet.auth.epoch`: any change to keys, principals or bindings moves it) and only
until the key's own expiry. Bounded, least-recently-used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from privet.auth.identity import Identity

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    epoch: int
    expires_at: datetime
    identity: Identity


class IdentityCache:
    """Identities by key digest; thread-safe, bounded."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str, *, epoch: int, now: datetime) -> Identity | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.epoch != epoch or entry.expires_at <= now:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry.identity

    def put(self, digest: str, *, epoch: int, expires_at: datetime, identity: Identity) -> None:
        with self._lock:
            self._entries[digest] = _Entry(epoch, expires_at, identity)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
