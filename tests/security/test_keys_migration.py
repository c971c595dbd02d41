"""Migration 0011_keys_invitations on a database that already has service accounts: each
gets the project of its first role binding (so its project's admins keep minting its
keys), users get none, and the migration goes down again. SQLite and PostgreSQL (a
database of its own, migrated step by step)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from privet import migrate
from privet.kit.ids import utcnow

BEFORE = "0010_freetext_sealed"
REVISION = "0011_keys_invitations"


@pytest.fixture
def engine(unmigrated_engine: Engine) -> Engine:
    return unmigrated_engine


def test_service_accounts_get_their_first_project_and_it_goes_down(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    now = utcnow()
    rows = {
        "projects": [("prj_a", "a"), ("prj_b", "b")],
        "principals": [("usr_1", "user"), ("sa_1", "service_account"), ("sa_2", "service_account")],
    }
    with engine.begin() as conn:
        for pid, name in rows["projects"]:
            conn.execute(
                text(
                    "INSERT INTO projects (id, name, description, created_at, created_by) "
                    "VALUES (:id, :name, '', :at, 'usr_1')"
                ),
                {"id": pid, "name": name, "at": now},
            )
        for pid, kind in rows["principals"]:
            conn.execute(
                text(
                    "INSERT INTO principals (id, kind, name, created_at) "
                    "VALUES (:id, :kind, :id, :at)"
                ),
                {"id": pid, "kind": kind, "at": now},
            )
        bindings = [
            ("rb_1", "usr_1", "prj_a", now),
            ("rb_2", "sa_1", "prj_b", now),  # sa_1: created in b, later also bound in a
            ("rb_3", "sa_1", "prj_a", now + timedelta(seconds=5)),
        ]
        for bid, principal, project, at in bindings:
            conn.execute(
                text(
                    "INSERT INTO role_bindings (id, principal_id, role, project_id, created_at,"
                    " created_by) VALUES (:id, :p, 'predictor', :prj, :at, 'usr_1')"
                ),
                {"id": bid, "p": principal, "prj": project, "at": at},
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
