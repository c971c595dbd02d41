"""`from tests.sqlite_only import db_url` runs a module's database tests on SQLite only
(a copy of the migrated template): for code that does not depend on the database, such as
parsers and the CLI client."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "privet.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite:///{target}"
