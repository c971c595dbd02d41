"""Shared fixtures: a fresh, migrated database on SQLite *and* PostgreSQL for every test that
asks for one, a runtime and app on it, and authenticated clients per role."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = not SHARED_DATA.is_dir()
    for item in items:
        if missing and "shared_data" in item.keywords:
            item.add_marker(pytest.mark.skipif(True, reason=f"{SHARED_DATA} is absent"))


# --- databases ----------------------------------------------------------------------------


def _pg_admin():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


class PgDatabases:
    """Creates throwaway PostgreSQL databases from one migrated template."""

    def __init__(self) -> None:
        from sqlalchemy import text

        from privet import migrate
        from privet.db import create_db_engine

        self.admin = _pg_admin()
        self.prefix = f"privet_test_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        engine = create_db_engine(self.url(self.template))
        migrate.upgrade(engine)
        engine.dispose()

    def url(self, name: str) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def new(self) -> str:
        from sqlalchemy import text

        name = f"{self.prefix}_{len(self.created)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        from sqlalchemy import text

        from privet.db import dispose_engines

        dispose_engines()
        with self.admin.connect() as conn:
            for name in [*self.created, self.template]:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from privet import migrate
    from privet.db import create_db_engine

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database for this test: every database test runs on both backends."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "privet.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    return dbs.new()


@pytest.fixture
def settings(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    from privet.config import Settings

    return Settings(home=tmp_path / "home", database_url=db_url)


@pytest.fixture
def runtime(settings):  # type: ignore[no-untyped-def]
    from privet.runtime import build_runtime

    rt = build_runtime(settings)
    yield rt
    from privet.db import dispose_engines

    dispose_engines()


@pytest.fixture
def app(runtime):  # type: ignore[no-untyped-def]
    from privet.api.app import create_app

    return create_app(runtime=runtime)


@dataclass
class Caller:
    principal_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def admin(runtime) -> Caller:  # type: ignore[no-untyped-def]
    """The platform-wide bootstrap admin."""
    from privet.auth import service
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        principal = service.bootstrap_admin(session)
        created = service.create_api_key(
            session,
            pepper=runtime.api_key_pepper,
            principal_id=principal.id,
            name="test admin",
            ttl_days=1,
            actor=principal.id,
        )
    return Caller(principal.id, created.key)


@pytest.fixture
def make_caller(runtime) -> Callable[..., Caller]:  # type: ignore[no-untyped-def]
    """make_caller(role, project_id) → a new principal holding that role there, with a key."""
    from privet.auth import service
    from privet.auth.models import PrincipalKind, Role
    from privet.db import session_scope

    def make(role: str | None, project_id: str | None, name: str = "tester") -> Caller:
        with session_scope(runtime.engine) as session:
            principal = service.create_principal(
                session, kind=PrincipalKind.user, name=name, actor=None
            )
            if role is not None:
                service.bind_role(
                    session,
                    principal_id=principal.id,
                    role=Role(role),
                    project_id=project_id,
                    actor=principal.id,
                )
            created = service.create_api_key(
                session,
                pepper=runtime.api_key_pepper,
                principal_id=principal.id,
                name=f"{name} key",
                ttl_days=1,
                actor=principal.id,
            )
        return Caller(principal.id, created.key)

    return make


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def python() -> str:
    return sys.executable
