"""`privet keys status|rotate|retire` against a temp PRIVET_HOME."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from privet import crypto
from privet.cli.keys import keys_app
from privet.config import Settings, clear_settings_caches
from privet.db import dispose_engines, session_scope


@pytest.fixture
def cli_env(
    home_settings: Settings, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("PRIVET_HOME", str(home_settings.home))
    monkeypatch.delenv("PRIVET_DATABASE_URL", raising=False)
    monkeypatch.delenv("PRIVET_KEY_PROVIDER", raising=False)
    clear_settings_caches()
    yield
    clear_settings_caches()
    dispose_engines()


def test_rotate_status_retire(
    cli_env: None,
    sqlite_engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Callable[..., crypto.ObjectRef],
) -> None:
    refs = [make_ref() for _ in range(2)]
    with session_scope(sqlite_engine) as session:
        for r in refs:
            crypto.write_object_bytes(
                session=session, provider=provider, store=store, ref=r, data=b"x"
            )
    runner = CliRunner()

    result = runner.invoke(keys_app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.output)
    assert state["current_version"] == 1
    assert [(v["version"], v["data_keys"]) for v in state["versions"]] == [(1, 2)]

    result = runner.invoke(keys_app, ["rotate"])
    assert result.exit_code == 0, result.output
    assert "version 2: 2 data key(s) rewrapped" in result.output

    result = runner.invoke(keys_app, ["status", "--objects"])
    assert result.exit_code == 0, result.output
    assert refs[0].object_id in result.output

    result = runner.invoke(keys_app, ["retire", "2"])
    assert result.exit_code == 1
    assert "current master key" in result.output

    result = runner.invoke(keys_app, ["retire", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(keys_app, ["status", "--json"])
    assert [
        (v["version"], v["state"], v["data_keys"]) for v in json.loads(result.output)["versions"]
    ] == [(1, "retired", 0), (2, "active", 2)]
    with session_scope(sqlite_engine) as session:
        for r in refs:
            assert (
                crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
                == b"x"
            )
