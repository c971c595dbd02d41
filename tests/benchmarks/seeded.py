"""Seeded databases for the benchmarks of issue 23: a year of a bank's traffic at any size,
built once by ``privet.devdata.seed_ledger`` and kept on disk between runs.

Size: ``PRIVET_BENCH_EVENTS`` (default 10,000; issue 23 asks for 10^4, 10^5 and 10^6).
Backends: ``PRIVET_BENCH_BACKENDS`` (default ``sqlite,postgres``). Cache:
``PRIVET_BENCH_CACHE`` (default ``~/.cache/privet-bench``), keyed by size, seed and a
digest of the code that decides what is written (``privet.devdata``, ``privet.ledger``,
``privet_audit``, the migrations): a change to any of them builds afresh. A SQLite cache
is a file; a PostgreSQL cache is a database named after the key (on ``PRIVET_TEST_PG``'s
server). Each comes with its PRIVET_HOME, whose signing key signed its checkpoints.

``PRIVET_BENCH_SEED_FROM`` (code versions, comma-separated): when the entry of this code
is missing, take the first of theirs that is built, copied and brought to this code's
schema by the migrations (``privet db upgrade``'s path), instead of seeding afresh. Only
for code changes that do not change what a seed writes (the copy says so in its
``upgraded_from`` file).

The cached database is shared by every run: treat it as read-only, and take
the ``seeded_copy`` fixture (``writable_copy``) for a benchmark that writes (SQLite: a
file copy; PostgreSQL: ``CREATE DATABASE ... TEMPLATE``, dropped after the test).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get(
    "PRIVET_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
EVENTS = int(os.environ.get("PRIVET_BENCH_EVENTS", "10000"))
BACKENDS = [
    b.strip() for b in os.environ.get("PRIVET_BENCH_BACKENDS", "sqlite,postgres").split(",")
]
CACHE = Path(os.environ.get("PRIVET_BENCH_CACHE", Path.home() / ".cache" / "privet-bench"))
SEED = 0
_CODE = ("platform/privet/devdata", "platform/privet/ledger", "audit/privet_audit")
_SCHEMA = "platform/privet/migrations/versions"


def code_version() -> str:
    """A digest of every source file that decides what a seed writes."""
    digest = hashlib.sha256()
    for root in (*_CODE, _SCHEMA):
        for path in sorted((REPO / root).rglob("*.py")):
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class SeededLedger:
    """A seeded database (read-only: see ``writable_copy``) and the home that signed it."""

    backend: str
    url: str
    home: Path
    events: int
    #: seconds the seed took if this run built it, None if it came from the cache
    built_in: float | None

    def activate(self, monkeypatch: pytest.MonkeyPatch, url: str | None = None) -> None:
        """Point PRIVET_DATABASE_URL and PRIVET_HOME at it (or at a copy's ``url``)."""
        from privet.config import clear_settings_caches
        from privet.kit.process_state import reset_process_state

        reset_process_state()
        monkeypatch.setenv("PRIVET_DATABASE_URL", url or self.url)
        monkeypatch.setenv("PRIVET_HOME", str(self.home))
        clear_settings_caches()

    def writable_copy(self, tmp_path: Path) -> str:
        """A copy to write into: a file in ``tmp_path``, or a database that ``drop_copy``
        drops (the ``seeded_copy`` fixture does both)."""
        if self.backend == "sqlite":
            target = tmp_path / "seeded-copy.db"
            shutil.copyfile(self.url.removeprefix("sqlite:///"), target)
            return f"sqlite:///{target}"
        name = f"{_pg_name(self.url)}_copy_{os.getpid()}"
        with _pg_admin() as admin:
            admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_name(self.url)}"'))
        return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop_copy(self, url: str) -> None:
        """Drop a PostgreSQL copy (a SQLite copy goes with its tmp_path)."""
        if self.backend != "sqlite":
            with _pg_admin() as admin:
                admin.execute(text(f'DROP DATABASE IF EXISTS "{_pg_name(url)}" WITH (FORCE)'))


@contextlib.contextmanager
def _pg_admin() -> Iterator[object]:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _pg_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cache entry, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _seed(url: str, home: Path, events: int) -> float:
    from privet.config import clear_settings_caches
    from privet.db import create_db_engine
    from privet.devdata import seed_ledger
    from privet.kit.process_state import reset_process_state

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRIVET_HOME", str(home))
        clear_settings_caches()
        engine = create_db_engine(url)
        shown = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - shown[0] > 10 or done == total:
                shown[0] = time.monotonic()
                print(f"[seed] {done:,}/{total:,}", flush=True)

        try:
            result = seed_ledger(engine=engine, events=events, seed=SEED, progress=progress)
        finally:
            engine.dispose()
            reset_process_state()
        clear_settings_caches()
    print(
        f"[seed] {result.events:,} events in {result.seconds:.1f}s "
        f"({result.events_per_second:,.0f}/s) -> {url}",
        flush=True,
    )
    return result.seconds


def _pg_url(key: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/privet_bench_" + key.replace("-", "_")


def _upgraded(backend: str, events: int, key: str) -> float | None:
    """Build ``key``'s entry from an older one (``PRIVET_BENCH_SEED_FROM``): copy, then
    migrate to head. The seconds it took, or None if no older entry is built."""
    from privet import migrate
    from privet.db import create_db_engine

    for old in filter(None, os.environ.get("PRIVET_BENCH_SEED_FROM", "").split(",")):
        src = CACHE / f"{backend}-{events}-s{SEED}-{old.strip()}"
        if not (src / "done").exists():
            continue
        started = time.monotonic()
        entry = CACHE / key
        shutil.rmtree(entry, ignore_errors=True)
        shutil.copytree(src / "home", entry / "home")
        if backend == "sqlite":
            shutil.copyfile(src / "privet.db", entry / "privet.db")
            url = f"sqlite:///{entry / 'privet.db'}"
        else:
            url = _pg_url(key)
            new, template = _pg_name(url), _pg_name(_pg_url(src.name))
            with _pg_admin() as admin:
                admin.execute(text(f'DROP DATABASE IF EXISTS "{new}" WITH (FORCE)'))
                admin.execute(text(f'CREATE DATABASE "{new}" TEMPLATE "{template}"'))
        engine = create_db_engine(url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        (entry / "upgraded_from").write_text(src.name + "\n")
        took = time.monotonic() - started
        print(f"[seed] {src.name} copied and migrated to head in {took:.1f}s", flush=True)
        return took
    return None


def seeded(backend: str, events: int = EVENTS) -> SeededLedger:
    """The cached seeded database of ``backend`` at ``events`` events (built if missing)."""
    key = f"{backend}-{events}-s{SEED}-{code_version()}"
    entry = CACHE / key
    home = entry / "home"
    with _locked(CACHE / f"{key}.lock"):
        if not (entry / "done").exists():
            took = _upgraded(backend, events, key)
            if took is not None:
                (entry / "done").write_text(f"{took:.3f}\n")
        if backend == "sqlite":
            db = entry / "privet.db"
            url = f"sqlite:///{db}"
            if db.exists() and (entry / "done").exists():
                return SeededLedger(backend, url, home, events, None)
            shutil.rmtree(entry, ignore_errors=True)
            home.mkdir(parents=True, mode=0o700)
            took = _seed(url, home, events)
        else:
            url = _pg_url(key)
            name = _pg_name(url)
            with _pg_admin() as admin:
                exists = admin.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if exists and (entry / "done").exists():
                    return SeededLedger(backend, url, home, events, None)
                admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.execute(text(f'CREATE DATABASE "{name}"'))
            shutil.rmtree(entry, ignore_errors=True)
            home.mkdir(parents=True, mode=0o700)
            took = _seed(url, home, events)
        (entry / "done").write_text(f"{took:.3f}\n")
    return SeededLedger(backend, url, home, events, took)
