"""Fixtures for the crypto tests: a temp PRIVET_HOME, a migrated database on SQLite and on
PostgreSQL (a fresh `privet_test_<random>` database per session), and a SoftHSM2 token."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from privet import crypto
from privet.config import Settings
from privet.db import create_db_engine
from privet.migrate import upgrade

# Only what the crypto tests need (0003 and what it is chained after), not every head.
MIGRATION = "0003_data_keys"
PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SOFTHSM_MODULE = os.environ.get("PRIVET_TEST_SOFTHSM_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture
def home_settings(tmp_path: Path) -> Settings:
    """Settings with a fresh PRIVET_HOME (SQLite by default)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return Settings(home=home)


@pytest.fixture
def sqlite_engine(home_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(home_settings.effective_database_url)
    upgrade(engine, MIGRATION)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    name = f"privet_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} unavailable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = create_db_engine(url)
    upgrade(engine, MIGRATION)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_db_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM data_keys"))
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM data_keys"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated database: every registry test runs on SQLite and on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def provider(home_settings: Settings) -> crypto.LocalKeyProvider:
    return crypto.LocalKeyProvider.from_settings(home_settings)


@pytest.fixture
def store(home_settings: Settings) -> crypto.LocalBlobStore:
    return crypto.LocalBlobStore(home_settings.blobs_dir)


@dataclass(frozen=True)
class SoftHsm:
    module: str
    token: str
    pin: str
    so_pin: str
    conf: Path


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """A SoftHSM2 token of our own, in a temp dir (one per session: the PKCS#11 module
    reads SOFTHSM2_CONF once per process)."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(SOFTHSM_MODULE).exists():
        if IN_CI:
            pytest.fail("SoftHSM2 is not installed (apt-get install -y softhsm2)")
        pytest.skip("SoftHSM2 is not installed (apt-get install -y softhsm2)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    hsm = SoftHsm(SOFTHSM_MODULE, f"privet-{secrets.token_hex(4)}", "5678-user", "1234-so", conf)
    subprocess.run(
        [
            util,
            "--init-token",
            "--free",
            "--label",
            hsm.token,
            "--so-pin",
            hsm.so_pin,
            "--pin",
            hsm.pin,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    yield hsm
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def make_ref() -> Callable[..., crypto.ObjectRef]:
    """make_ref(kind=..., project=...) -> a new object reference with a random id."""

    def make(kind: str = "dataset_version", project: str = "prj_test") -> crypto.ObjectRef:
        return crypto.ObjectRef(kind, f"obj_{secrets.token_hex(6)}", project)

    return make
