"""Shared fixtures: a fresh, migrated database on SQLite *and* PostgreSQL for every test that
asks for one, a runtime and app on it, and authenticated clients per role. The helpers behind
them (principals, keys, OIDC signing keys and claims) serve the tests, fuzzers and benchmarks
that build their own runtime: ``from tests.conftest import ...``."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `shared_data` tests when ../shared/data is absent (a user's fresh clone; CI has
    it), and run `postgres`-marked database tests on PostgreSQL only (not skipped on SQLite:
    not generated there at all)."""
    missing = not SHARED_DATA.is_dir()
    kept, dropped = [], []
    for item in items:
        if missing and "shared_data" in item.keywords:
            item.add_marker(pytest.mark.skipif(True, reason=f"{SHARED_DATA} is absent"))
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec else None
        if backend == "sqlite" and item.get_closest_marker("postgres"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Every test reads the environment as it finds it: settings are cached per process
    (``privet.config.settings_getter``), and tests change PRIVET_* variables. A test that
    sets one part-way through calls ``clear_settings_caches()`` itself."""
    from privet.config import clear_settings_caches

    clear_settings_caches()
    yield
    clear_settings_caches()


# --- databases ----------------------------------------------------------------------------


def _pg_admin():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


class PgDatabase:
    """One migrated PostgreSQL database for this test run, emptied before every test.

    Creating a database per test costs about a second on this machine (CREATE and DROP
    DATABASE both checkpoint); emptying every table costs a few milliseconds.
    """

    def __init__(self) -> None:
        from sqlalchemy import text

        from privet import migrate
        from privet.db import create_db_engine

        self.admin = _pg_admin()
        self.name = f"privet_test_{secrets.token_hex(4)}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        self.engine = create_db_engine(self.url)
        migrate.upgrade(self.engine)
        self.head = migrate.head_revision(self.engine)
        with self.engine.connect() as conn:
            self.tables = [
                str(name)
                for name in conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename NOT IN ('alembic_version', 'auth_epoch')"
                    )
                ).scalars()
            ]

    def fresh(self) -> str:
        """Empty every table (bypassing the ledger's append-only triggers, as only the
        database owner can) after closing whatever the previous test left connected."""
        from sqlalchemy import text

        from privet.kit.process_state import reset_process_state

        reset_process_state()  # sequencers, appenders, ledgers, engines: all of them
        with self.admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            )
        self.engine.dispose()
        with self.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            tables = ", ".join(f'"{t}"' for t in self.tables)
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            _reseed(conn)
            # A test may have moved the schema marker (e.g. readiness with stale migrations).
            conn.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": self.head}
            )
        self.engine.dispose()
        return self.url

    def drop(self) -> None:
        from sqlalchemy import text

        from privet.db import dispose_engines

        dispose_engines()
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def _reseed(conn: Any) -> None:
    """Put back the rows migrations seed (the shipped base model, migration 0019, its
    licence as migration 0024 sorted it)."""
    import importlib

    from sqlalchemy import MetaData, Table

    seed = importlib.import_module("privet.migrations.versions.0019_base_models")
    table = Table("base_models", MetaData(), autoload_with=conn)
    conn.execute(table.insert(), [seed.SHIPPED])
    licences = importlib.import_module("privet.migrations.versions.0024_base_model_licences")
    licences.sort_licences(conn)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    database = PgDatabase()
    yield database
    database.drop()


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
    """An empty, migrated database for this test: every database test runs on both backends
    (SQLite: a copy of a migrated file; PostgreSQL: this run's database, emptied)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "privet.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    database: PgDatabase = request.getfixturevalue("pg_database")
    return database.fresh()


@pytest.fixture(params=["sqlite", "postgres"])
def unmigrated_engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An empty database of its own, not migrated: migration tests start from an old
    revision (the shared test databases are already at head)."""
    from sqlalchemy import text

    from privet.db import create_db_engine

    if request.param == "sqlite":
        engine = create_db_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")
        yield engine
        engine.dispose()
        return
    admin = _pg_admin()
    name = f"privet_mig_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_db_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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


def seed_principal(
    session: Any,
    role: str | None,
    project_id: str | None,
    name: str,
    *,
    kind: str = "user",
    actor: str | None = None,
) -> Any:
    """A new principal made by the operator (the service layer), holding ``role`` in
    ``project_id`` (no binding when ``role`` is None), bound on its own behalf."""
    from privet.auth import service
    from privet.auth.tables import PrincipalKind, Role

    principal = service.create_principal(session, kind=PrincipalKind(kind), name=name, actor=actor)
    if role is not None:
        service.bind_role(
            session,
            principal_id=principal.id,
            role=Role(role),
            project_id=project_id,
            actor=principal.id,
        )
    return principal


def mint_key(
    session: Any,
    runtime: Any,
    principal_id: str,
    name: str,
    *,
    ttl_days: int = 1,
    project_id: str | None = None,
) -> Any:
    """A key minted by the service layer for ``principal_id`` on its own behalf (the
    ``ApiKeyCreated``: ``.key`` is the secret)."""
    from privet.auth import service

    return service.create_api_key(
        session,
        pepper=runtime.api_key_pepper,
        principal_id=principal_id,
        name=name,
        ttl_days=ttl_days,
        actor=principal_id,
        project_id=project_id,
    )


def bootstrap_admin_key(runtime: Any, name: str) -> Caller:
    """The platform-wide bootstrap admin with a one-day key named ``name``."""
    from privet.auth import service
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        principal = service.bootstrap_admin(session)
        created = mint_key(session, runtime, principal.id, name)
    return Caller(principal.id, created.key)


def predictor_key(runtime: Any, project_id: str, *, name: str, key_name: str, creator: str) -> str:
    """The key of a new service account ``name``, made by ``creator``, holding the predictor
    role in ``project_id`` (an application that scores with the project's models)."""
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        app = seed_principal(
            session, "predictor", project_id, name, kind="service_account", actor=creator
        )
        return str(mint_key(session, runtime, app.id, key_name).key)


def trust_oidc_key(runtime: Any, jwks: Path, *, issuer: str, audience: str, kid: str) -> Any:
    """A new RSA signing key, published as ``kid`` in a JWKS file at ``jwks``, and ``runtime``
    trusting the tokens it signs for ``issuer`` and ``audience`` (subject ``sub``, roles
    ``privet_roles``)."""
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from privet.auth.oidc import OidcVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    jwks.write_text(json.dumps({"keys": [jwk]}))
    runtime.oidc = OidcVerifier(
        issuer=issuer,
        audience=audience,
        jwks=str(jwks),
        subject_claim="sub",
        roles_claim="privet_roles",
    )
    return key


def token_claims(
    issuer: str, audience: str, subject: str, *, issued_at: bool = False, **claims: Any
) -> dict[str, Any]:
    """The claims of a token for ``subject`` that expires in five minutes (with ``iat`` when
    ``issued_at``), then ``claims``."""
    import time

    now = int(time.time())
    base: dict[str, Any] = {"iss": issuer, "aud": audience, "sub": subject, "exp": now + 300}
    if issued_at:
        base["iat"] = now
    return {**base, **claims}


@pytest.fixture
def admin(runtime) -> Caller:  # type: ignore[no-untyped-def]
    """The platform-wide bootstrap admin."""
    return bootstrap_admin_key(runtime, "test admin")


@pytest.fixture
def make_caller(runtime) -> Callable[..., Caller]:  # type: ignore[no-untyped-def]
    """make_caller(role, project_id) → a new principal holding that role there, with a key."""
    from privet.db import session_scope

    def make(role: str | None, project_id: str | None, name: str = "tester") -> Caller:
        with session_scope(runtime.engine) as session:
            principal = seed_principal(session, role, project_id, name)
            created = mint_key(session, runtime, principal.id, f"{name} key")
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


@pytest.fixture(scope="session")
def pg_databases(pg_database: PgDatabase) -> PgDatabase:
    """Alias for tests written against the earlier name (`.new()` = `.fresh()`)."""
    pg_database.new = pg_database.fresh  # type: ignore[attr-defined]
    return pg_database


# The job fixtures (tests/jobs/conftest.py: a tiny pinned BERT, a project with an engineer
# and an approver, a dataset version, a worker), shared here with every package that
# trains a model (cli, models, basemodels, ...) instead of each importing them. A package
# with a `project` of its own (datasets, inference) overrides it in its conftest. Imported
# last: tests/jobs/conftest.py builds on tests/datasets/conftest.py, not on this module.
from tests.jobs.conftest import (  # noqa: E402, F401 - fixtures
    approver,
    dataset_version,
    engineer,
    job_settings,
    make_worker,
    project,
    tiny_model,
)
