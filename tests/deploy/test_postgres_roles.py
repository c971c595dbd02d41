"""The PostgreSQL role set-up of deploy/README.md, on the test PostgreSQL: the owner
migrates and runs deploy/helm/privet/files/app-grants.sql (as the chart's migrate Job and
compose's db-grants do); the application role then runs privet (init, ledger checkpoint,
ledger verify) but cannot rewrite the ledger, change the schema or switch triggers off."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.deploy._support import CHART, DEPLOY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
GRANTS = CHART / "files" / "app-grants.sql"
INITDB = DEPLOY / "postgres" / "initdb" / "10-privet-roles.sh"


@dataclass
class Cluster:
    owner_url: str
    app_url: str
    owner: str
    app: str


def _url(role: str, password: str, database: str) -> str:
    return (
        make_url(PG_ADMIN_URL)
        .set(username=role, password=password, database=database)
        .render_as_string(hide_password=False)
    )


def _setup_sql(owner: str, app: str, database: str) -> tuple[list[str], list[str]]:
    """The statements of compose's initdb script, with this test's role/database names
    (the cluster-wide privet_app is shared with the other PostgreSQL tests)."""
    body = INITDB.read_text("utf-8").split("<<'SQL'\n", 1)[1].split("\nSQL\n", 1)[0]
    body = body.replace(":'owner_pw'", "'pw'").replace(":'app_pw'", "'pw'")
    body = re.sub(r"\bprivet_owner\b", owner, body)
    body = re.sub(r"\bprivet\b(?!_)", app, body)  # the login role and the database
    body = body.replace(f"DATABASE {app} OWNER", f"DATABASE {database} OWNER")
    cluster_part, db_part = body.split(f"\\connect {app}\n")
    statements = [s.strip() for s in cluster_part.split(";") if s.strip()]
    statements = [s for s in statements if s != "CREATE ROLE privet_app NOLOGIN"]
    return statements, [s.strip() for s in db_part.split(";") if s.strip()]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        admin.connect().close()
    except OperationalError:
        pytest.skip("no PostgreSQL at PRIVET_TEST_PG")
    tag = secrets.token_hex(4)
    owner, app, database = f"privet_owner_{tag}", f"privet_{tag}", f"privet_deploy_{tag}"
    cluster_sql, db_sql = _setup_sql(owner, app, database)
    with admin.connect() as conn:
        conn.execute(
            text(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'privet_app') "
                "THEN CREATE ROLE privet_app NOLOGIN; END IF; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
        )
        for statement in cluster_sql:
            conn.execute(text(statement))
    db_admin = create_engine(
        make_url(PG_ADMIN_URL).set(database=database), isolation_level="AUTOCOMMIT"
    )
    with db_admin.connect() as conn:
        for statement in db_sql:
            conn.execute(text(statement))
    db_admin.dispose()
    try:
        yield Cluster(_url(owner, "pw", database), _url(app, "pw", database), owner, app)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{app}"'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


def privet(home: Path, url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRIVET_HOME": str(home),
        "PRIVET_DATABASE_URL": url,
        "PRIVET_KEY_PROVIDER": "local",
    }
    return subprocess.run(
        [sys.executable, "-c", "from privet.cli import app; app()", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_app_role_runs_privet_but_cannot_rewrite_the_ledger(
    cluster: Cluster, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    migrated = privet(tmp_path / "owner", cluster.owner_url, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    owner = create_engine(cluster.owner_url)
    with owner.begin() as conn:  # what the Helm migrate Job's app-grants container runs
        conn.exec_driver_sql(GRANTS.read_text("utf-8"))
    with owner.begin() as conn:  # idempotent
        conn.exec_driver_sql(GRANTS.read_text("utf-8"))
    owner.dispose()

    init = privet(home, cluster.app_url, "init")
    assert init.returncode == 0, init.stderr + init.stdout
    assert "PRIVET_API_KEY=" in init.stdout
    checkpoint = privet(home, cluster.app_url, "audit", "checkpoint")
    assert checkpoint.returncode == 0, checkpoint.stderr + checkpoint.stdout
    verify = privet(home, cluster.app_url, "audit", "verify")
    assert verify.returncode == 0, verify.stderr + verify.stdout

    app = create_engine(cluster.app_url)
    try:
        with app.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one() > 0
            conn.execute(text("UPDATE principals SET name = name"))  # ordinary tables: DML
        for statement in (
            "UPDATE ledger_entries SET created_at = created_at",
            "DELETE FROM ledger_checkpoints",
            "TRUNCATE ledger_leaves",
            "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
            "CREATE TABLE sneaky (id int)",
            "DROP TABLE principals",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(DBAPIError, match=r"permission denied|must be owner"):
                with app.begin() as conn:
                    conn.execute(text(statement))
    finally:
        app.dispose()
