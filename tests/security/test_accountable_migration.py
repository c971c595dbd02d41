"""Migration 0012 backfills the accountable human of every existing principal: a user is
its own; a service account answers to its recorded creator (ledger event, else its first
role binding's creator, else its project's creator), through chains of service accounts;
one with no recorded creator stays unknown (and two-person rules refuse it). SQLite and
PostgreSQL, from a database at the previous revision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from privet import migrate

BEFORE = "0011_keys_invitations"


@pytest.fixture
def old_engine(unmigrated_engine: Engine) -> Engine:
    """An empty database migrated only up to the revision before accountable humans."""
    migrate.upgrade(unmigrated_engine, BEFORE)
    return unmigrated_engine


def test_backfill_of_accountable_humans(old_engine: Engine) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    principals = [  # (id, kind, minutes after `now`)
        ("usr_alice", "user", 0),
        ("usr_bob", "user", 1),
        ("sa_bound", "service_account", 2),  # bound by alice
        ("sa_chain", "service_account", 3),  # bound by sa_bound → alice
        ("sa_self", "service_account", 4),  # bound by itself in bob's project → bob
        ("sa_logged", "service_account", 5),  # created by bob (ledger), bound by alice
        ("sa_orphan", "service_account", 6),  # nothing recorded → unknown
    ]
    bindings = [  # (principal, created_by)
        ("sa_bound", "usr_alice"),
        ("sa_chain", "sa_bound"),
        ("sa_self", "sa_self"),
        ("sa_logged", "usr_alice"),
    ]
    with old_engine.begin() as conn:
        for pid, kind, minute in principals:
            conn.execute(
                text(
                    "INSERT INTO principals (id, kind, name, created_at) "
                    "VALUES (:id, :kind, :id, :at)"
                ),
                {"id": pid, "kind": kind, "at": now.replace(minute=minute)},
            )
        conn.execute(
            text(
                "INSERT INTO projects (id, name, description, created_at, created_by) "
                "VALUES ('prj_b', 'b', '', :at, 'usr_bob')"
            ),
            {"at": now},
        )
        for i, (pid, creator) in enumerate(bindings):
            conn.execute(
                text(
                    "INSERT INTO role_bindings (id, principal_id, role, project_id, created_at, "
                    "created_by) VALUES (:id, :pid, 'approver', 'prj_b', :at, :by)"
                ),
                {"id": f"rb_{i}", "pid": pid, "at": now.replace(minute=10 + i), "by": creator},
            )
        conn.execute(
            text(
                "INSERT INTO ledger_leaves (idx, entry_id, leaf_hash, type, project, actor, "
                "event_time, integrated_at) VALUES (0, 1, :h, 'principal.created', NULL, "
                "'usr_bob', :at, :at)"
            ),
            {"h": b"\0" * 32, "at": now},
        )
        conn.execute(
            text(
                "INSERT INTO ledger_leaf_objects (object_id, leaf_idx, kind) "
                "VALUES ('sa_logged', 0, 'principal')"
            )
        )

    migrate.upgrade(old_engine)

    with old_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, accountable_human_id FROM principals"))
        found = {row[0]: row[1] for row in rows}
    assert found == {
        "usr_alice": "usr_alice",
        "usr_bob": "usr_bob",
        "sa_bound": "usr_alice",
        "sa_chain": "usr_alice",
        "sa_self": "usr_bob",
        "sa_logged": "usr_bob",
        "sa_orphan": None,
    }
