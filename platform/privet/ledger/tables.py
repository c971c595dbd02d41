"""Tables of the audit ledger. Every one is append-only: the database rejects UPDATE and
DELETE (and TRUNCATE on PostgreSQL) with triggers installed by migration 0002_ledger.

- ``ledger_entries``: durable pending appends, written in the caller's transaction by
  ``emit``; ``id`` is an allocation order only, never a tree position. On PostgreSQL the
  table also has ``xid`` (xid8, set by the insert trigger: the inserting transaction's id),
  which the sequencer's floor is compared with; it is not mapped here (the trigger fills it).
- ``ledger_leaves``: the tree, written only by the sequencer: dense ``idx`` 0..n-1, the
  entry it integrates (unique), the RFC 6962 leaf hash, and a few columns copied from
  the event so that queries can filter without parsing JSON.
- ``ledger_leaf_objects``: object ids referenced by each leaf (filter by object).
- ``ledger_nodes``: perfect-subtree hashes (level >= 1) for O(log n) proofs.
- ``ledger_tree_states``: one row per sequencer pass that changed something: tree size,
  root, and the sequencer's floor (see sequencer.py).
- ``ledger_checkpoints``: signed C2SP tlog-checkpoints, strictly growing sizes.
- ``ledger_time_zones``: per complete block of leaves, its earliest and latest event time
  (zones.py): what turns a time window into leaf-index ranges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlmodel import Field, SQLModel

from privet.kit.types import UTCDateTime

#: BIGINT on PostgreSQL; INTEGER (the rowid alias, so AUTOINCREMENT works) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

LEDGER_TABLES = (
    "ledger_entries",
    "ledger_leaves",
    "ledger_leaf_objects",
    "ledger_nodes",
    "ledger_tree_states",
    "ledger_checkpoints",
    "ledger_time_zones",
)


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    event: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerLeaf(SQLModel, table=True):
    __tablename__ = "ledger_leaves"
    #: One index per filter of GET /v1/audit/events, ending in ``idx`` so that a filtered
    #: page is an index range already in leaf order (no sort; migration 0017).
    __table_args__ = (
        Index("ix_ledger_leaves_type_idx", "type", "idx"),
        Index("ix_ledger_leaves_project_idx", "project", "idx"),
        Index("ix_ledger_leaves_actor_idx", "actor", "idx"),
    )

    idx: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    entry_id: int = Field(sa_column=Column(BigId, nullable=False, unique=True))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    project: str | None = Field(default=None, sa_column=Column(String(128)))
    actor: str | None = Field(default=None, sa_column=Column(String(128)))
    #: not indexed: a time window is read through ``ledger_time_zones`` (migration 0022)
    event_time: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    integrated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerLeafObject(SQLModel, table=True):
    __tablename__ = "ledger_leaf_objects"

    object_id: str = Field(sa_column=Column(String(128), primary_key=True))
    leaf_idx: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    kind: str = Field(sa_column=Column(String(64), nullable=False))


class LedgerNode(SQLModel, table=True):
    __tablename__ = "ledger_nodes"

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LedgerTreeState(SQLModel, table=True):
    __tablename__ = "ledger_tree_states"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    #: SQLite: every entry id <= floor is integrated or will never exist (0 on PostgreSQL).
    floor_entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: PostgreSQL: every entry whose inserting transaction's xid (ledger_entries.xid) is
    #: below floor_xid is integrated or will never exist (NULL on SQLite).
    floor_xid: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerCheckpoint(SQLModel, table=True):
    __tablename__ = "ledger_checkpoints"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LedgerTimeZone(SQLModel, table=True):
    """Block ``block`` holds leaves ``block * ZONE_LEAVES`` .. ``(block + 1) * ZONE_LEAVES
    - 1``; every one of their event times lies in [time_min, time_max]."""

    __tablename__ = "ledger_time_zones"

    block: int = Field(sa_column=Column(BigId, primary_key=True, autoincrement=False))
    time_min: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    time_max: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


__all__ = [
    "LEDGER_TABLES",
    "LedgerCheckpoint",
    "LedgerEntry",
    "LedgerLeaf",
    "LedgerLeafObject",
    "LedgerNode",
    "LedgerTimeZone",
    "LedgerTreeState",
]
