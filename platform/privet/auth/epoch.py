"""The authentication epoch: what makes cached identities safe to use.

The database bumps the single `auth_epoch` row in the same transaction as any insert,
update or delete of a principal, a role binding or an API key (triggers, migration
0015_auth_epoch: no code path can forget it). A reader compares the epoch it cached an
identity under with the current one: one primary-key read instead of the key, the
principal and its bindings, and never a stale grant once a revocation has committed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

_READ = text("SELECT value FROM auth_epoch WHERE id = 1")


def current(session: Session) -> int | None:
    """The epoch as this transaction sees it; None if the row is missing (then nothing may
    be cached: there is no signal of change to trust)."""
    value = session.connection().execute(_READ).scalar_one_or_none()
    return None if value is None else int(value)
