"""Ledger fixtures on top of the shared ``db_url`` (a fresh migrated database per test, on
SQLite and on PostgreSQL): an engine, a ``Ledger`` with its own PRIVET_HOME (signing key,
checkpoints.log), and owner-level helpers that bypass the append-only triggers the way a
database administrator could."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from privet.config import Settings, clear_settings_caches
from privet.db import create_db_engine, is_sqlite
from privet.ledger import zones
from privet.ledger.sequencer import Ledger, set_ledger
from privet.ledger.settings import LedgerSettings
from privet.ledger.tables import LEDGER_TABLES

PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("PRIVET_HOME", str(home))
    clear_settings_caches()
    yield home
    clear_settings_caches()


@pytest.fixture
def engine(db_url: str, home: Path) -> Iterator[Engine]:
    monkey = pytest.MonkeyPatch()
    monkey.setenv("PRIVET_DATABASE_URL", db_url)
    clear_settings_caches()
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()
    monkey.undo()
    clear_settings_caches()


def make_ledger(engine: Engine, home: Path, **overrides: object) -> Ledger:
    """A Ledger bound to ``engine`` and registered as the process-wide one for it."""
    ls = LedgerSettings(**overrides)  # type: ignore[arg-type]
    ledger = Ledger(engine, Settings(home=home), ls)
    set_ledger(ledger)
    return ledger


@pytest.fixture
def ledger(engine: Engine, home: Path) -> Ledger:
    return make_ledger(engine, home, checkpoint_every=50, checkpoint_interval_s=3600)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time-zone blocks of 4 leaves (the database is fresh: no block was written with
    another size)."""
    monkeypatch.setattr(zones, "ZONE_LEAVES", 4)
    monkeypatch.setattr(zones, "_CHUNK", 3)


@contextlib.contextmanager
def owner_bypass(engine: Engine) -> Iterator[Connection]:
    """A connection on which the append-only triggers do not fire: what the database
    owner (a superuser on PostgreSQL; anyone with the file on SQLite) can do."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            names = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            ).scalars()
            for name in list(names):
                conn.execute(text(f'DROP TRIGGER "{name}"'))
        else:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        yield conn


def copy_database(engine: Engine, db_url: str, tmp_path: Path, name: str) -> str:
    """An offline copy of the database (a backup), returning its URL."""
    engine.dispose()
    if is_sqlite(engine):
        import sqlite3

        src = sqlite3.connect(engine.url.database or "")
        dst = tmp_path / f"{name}.db"
        out = sqlite3.connect(dst)
        src.backup(out)  # a consistent copy, WAL included
        out.close()
        src.close()
        return f"sqlite:///{dst}"
    from sqlalchemy import create_engine

    from privet.db import dispose_engines

    dispose_engines()
    src_name = engine.url.database
    new_name = f"{src_name}_{name}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{new_name}" TEMPLATE "{src_name}"'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + new_name


def drop_database_copy(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


__all__ = ["LEDGER_TABLES", "copy_database", "drop_database_copy", "make_ledger", "owner_bypass"]
