"""Migration 0011_keys_invitations on a database that already has service accounts: each
gets the project of its first role binding (so its project's admins keep minting its
keys), users get none, and the migration goes down again. SQLite and PostgreSQL (a
database of its own, migrated step by step)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, text

from privet import migrate
from privet.kit.ids import utcnow

BEFORE = "0010_freetext_sealed"
REVISION = "0011_keys_invitations"


@pytest.fixture
def engine(unmigrated_engine: Engine) -> Engine:
    return unmigrated_engine


def _insert(conn: Connection, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    """Rows written as they stood before the migration (straight SQL, no current model)."""
    names = columns.split()
    values = ", ".join(f":{c}" for c in names)
    statement = text(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({values})")
    conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


def test_service_accounts_get_their_first_project_and_it_goes_down(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    now = utcnow()
    later = now + timedelta(seconds=5)
    with engine.begin() as conn:
        _insert(
            conn,
            "projects",
            "id name description created_at created_by",
            [("prj_a", "a", "", now, "usr_1"), ("prj_b", "b", "", now, "usr_1")],
        )
        _insert(
            conn,
            "principals",
            "id kind name created_at",
            [
                ("usr_1", "user", "usr_1", now),
                ("sa_1", "service_account", "sa_1", now),
                ("sa_2", "service_account", "sa_2", now),
            ],
        )
        _insert(
            conn,
            "role_bindings",
            "id principal_id role project_id created_at created_by",
            [
                ("rb_1", "usr_1", "predictor", "prj_a", now, "usr_1"),
                # sa_1: created in b, later also bound in a
                ("rb_2", "sa_1", "predictor", "prj_b", now, "usr_1"),
                ("rb_3", "sa_1", "predictor", "prj_a", later, "usr_1"),
            ],
        )
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    with engine.connect() as conn:
        homes = dict(conn.execute(text("SELECT id, project_id FROM principals")).all())
    assert homes == {"usr_1": None, "sa_1": "prj_b", "sa_2": None}
    assert "invitations" in inspect(engine).get_table_names()

    cfg = migrate._config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    engine.dispose()
    inspector = inspect(engine)
    assert "invitations" not in inspector.get_table_names()
    assert "project_id" not in {c["name"] for c in inspector.get_columns("principals")}
    migrate.upgrade(engine)  # and up again
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
