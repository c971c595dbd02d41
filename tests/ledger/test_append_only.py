"""Append-only is enforced by the database: triggers on every ledger table, and on
PostgreSQL a role with only SELECT and INSERT."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from privet.db import is_sqlite, session_scope
from privet.ledger import emit, zones
from privet.ledger.sequencer import Ledger
from privet.ledger.tables import LEDGER_TABLES

KEYS = {
    "ledger_entries": "id",
    "ledger_leaves": "idx",
    "ledger_leaf_objects": "leaf_idx",
    "ledger_nodes": "idx",
    "ledger_tree_states": "id",
    "ledger_checkpoints": "id",
    "ledger_time_zones": "block",
}


@pytest.fixture
def filled(engine: Engine, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(zones, "ZONE_LEAVES", 2)  # so that 5 leaves complete a block
    for i in range(5):
        with session_scope(engine) as s:
            emit(s, type="test.event", actor="prn_t", objects={"thing": f"obj_{i}"})
    ledger.integrate_now()
    return engine


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_update_and_delete_rejected_by_trigger(filled: Engine, table: str) -> None:
    key = KEYS[table]
    with filled.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() > 0
    for stmt in (f"UPDATE {table} SET {key} = {key}", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
            conn.execute(text(stmt))
    if not is_sqlite(filled):
        with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))


@pytest.mark.postgres  # SQLite has no roles; its triggers apply to every connection
def test_app_role_can_only_select_and_insert(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("SET LOCAL ROLE privet_app"))
        assert conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one() == 5
        conn.execute(text("INSERT INTO ledger_entries (event, created_at) VALUES ('{}', now())"))
    for table in LEDGER_TABLES:
        key = KEYS[table]
        for stmt in (
            f"UPDATE {table} SET {key} = {key}",
            f"DELETE FROM {table}",
            f"TRUNCATE {table}",
            f"ALTER TABLE {table} DISABLE TRIGGER USER",
        ):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                with filled.begin() as conn:
                    conn.execute(text("SET LOCAL ROLE privet_app"))
                    conn.execute(text(stmt))
    # nor can it switch the triggers off
    with pytest.raises(DBAPIError, match="permission denied"), filled.begin() as conn:
        conn.execute(text("SET LOCAL ROLE privet_app"))
        conn.execute(text("SET LOCAL session_replication_role = replica"))
    # the privilege, not only the trigger, stops it: with triggers off, still denied
    with pytest.raises(DBAPIError, match="permission denied for table"), filled.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("SET LOCAL ROLE privet_app"))
        conn.execute(text("DELETE FROM ledger_entries"))


@pytest.mark.postgres
def test_migration_is_rerunnable_role_is_idempotent(engine: Engine) -> None:
    """The role is cluster-wide: a second database's migration must not fail on it."""
    with engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM pg_roles WHERE rolname = 'privet_app'")
            ).scalar_one()
            == 1
        )
