"""Sign in once with OIDC: `privet login` runs the device authorization grant (RFC 8628)
against a real OpenID provider over HTTP (tests/cli/oidc_provider.py), stores the tokens in
a 0600 profile, and later commands present the access token, refreshed when it expired.
The gateway is the in-process app, configured to trust the provider's JWKS file."""

from __future__ import annotations

import json
import stat
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.cli.conftest import Run
from tests.cli.oidc_provider import Provider, Running

AUDIENCE, CLIENT_ID = "privet-api", "privet-cli"


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[Provider]:
    with Running(tmp_path) as provider:
        yield provider


@pytest.fixture
def settings(tmp_path: Path, db_url: str, idp: Provider) -> Any:
    """The gateway trusts the provider: issuer, audience, its JWKS as a file, the CLI's
    public client id."""
    from privet.config import Settings

    return Settings(
        home=tmp_path / "home",
        database_url=db_url,
        oidc_issuer=idp.issuer,
        oidc_audience=AUDIENCE,
        oidc_jwks=str(idp.jwks_file),
        oidc_client_id=CLIENT_ID,
    )


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds the CLI asked to wait between polls (slept for a fiftieth of that, so
    the tests are quick while the provider still sees the real sequence of polls)."""
    from privet.cli import oidc_login

    asked: list[float] = []

    def wait(seconds: float) -> None:
        asked.append(seconds)
        time.sleep(seconds / 50)

    monkeypatch.setattr(oidc_login, "_wait", wait)
    return asked


def _profile(config_home: Path, name: str = "default") -> dict[str, Any]:
    return dict(
        tomllib.loads((config_home / "privet" / "config.toml").read_text())["profiles"][name]
    )


def _principal_of(runtime: Any, issuer: str, subject: str) -> str:
    from sqlmodel import select

    from privet.auth.tables import Principal
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        found = session.exec(
            select(Principal).where(Principal.issuer == issuer, Principal.subject == subject)
        ).one()
        return found.id


def test_the_gateway_tells_clients_how_to_sign_in_without_credentials(
    client: Any, idp: Provider, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from privet.api.app import create_app
    from privet.config import Settings

    response = client.get("/v1/auth/config")  # no Authorization header
    assert response.status_code == 200, response.text
    assert response.json() == {
        "oidc": {"issuer": idp.issuer, "audience": AUDIENCE, "client_id": CLIENT_ID}
    }
    plain = create_app(settings=Settings(home=tmp_path / "plain"))
    with TestClient(plain) as other:
        assert other.get("/v1/auth/config").json() == {"oidc": None}


def test_device_login_stores_a_private_profile_and_whoami_shows_the_subject(
    cli: Run,
    client: Any,
    admin: Any,
    idp: Provider,
    waits: list[float],
    config_home: Path,
    runtime: Any,
) -> None:
    project = client.post("/v1/projects", json={"name": "loans"}, headers=admin.headers).json()
    idp.roles = [f"auditor@{project['id']}"]
    idp.plan = ["pending", "slow_down", "pending", "approve"]

    # No --api-key and no --oidc: the server advertises OIDC, so the device flow runs.
    done = cli("login", "--url", "http://testserver")
    assert done.exit_code == 0, done.output
    assert f"{idp.issuer}/activate?user_code=WDJB-MJHT" in done.output
    assert "WDJB-MJHT" in done.output and "Alice Example" in done.stdout

    device = [r for r in idp.requests if r.path == "/device"]
    assert [(r.form["client_id"], r.form["scope"]) for r in device] == [(CLIENT_ID, "openid")]
    polls = idp.polls()
    assert len(polls) == 4
    assert {p.form["device_code"] for p in polls} == {polls[0].form["device_code"]}
    assert all(p.form["client_id"] == CLIENT_ID for p in polls)
    # interval 1 s, then + 5 s for this and every later poll after slow_down (RFC 8628 3.5)
    assert waits == [1, 1, 6, 6]

    path = config_home / "privet" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = _profile(config_home)
    assert stored["method"] == "oidc" and "api_key" not in stored
    assert stored["url"] == "http://testserver"
    assert stored["oidc_issuer"] == idp.issuer and stored["oidc_client_id"] == CLIENT_ID
    assert stored["refresh_token"] in idp.refresh_tokens
    claims = jwt.decode(stored["access_token"], options={"verify_signature": False})
    assert claims["sub"] == idp.subject
    assert abs(time.time() + idp.token_ttl - _epoch(stored["expires_at"])) < 30

    me = json.loads(cli("whoami", "-o", "json").stdout)
    assert me["principal_id"] == _principal_of(runtime, idp.issuer, idp.subject)
    assert me["name"] == "Alice Example" and me["kind"] == "user"
    assert me["roles"] == [{"role": "auditor", "project_id": project["id"]}]
    assert me["credential"]["method"] == "oidc"
    assert _epoch(me["credential"]["expires_at"]) == claims["exp"]
    shown = cli("whoami", "-o", "table").stdout
    assert "credential: oidc token, expires" in shown and "refreshed automatically" in shown

    listed = json.loads(cli("projects", "list", "-o", "json").stdout)  # the token is the bearer
    assert [p["id"] for p in listed] == [project["id"]]
    assert idp.refreshes() == []  # a valid token is not refreshed


def _epoch(value: str) -> float:
    from datetime import datetime

    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.timestamp()


@pytest.mark.parametrize(
    "plan,says",
    [
        (["pending", "deny"], ["refused", "access_denied", "privet login"]),
        (["pending", "expire"], ["expired", "privet login"]),
    ],
)
def test_a_refused_or_expired_sign_in_says_what_to_do_and_stores_nothing(
    cli: Run,
    idp: Provider,
    waits: list[float],
    config_home: Path,
    plan: list[str],
    says: list[str],
) -> None:
    idp.plan = plan
    failed = cli("login", "--url", "http://testserver", "--oidc")
    assert failed.exit_code == 1, failed.output
    for words in says:
        assert words in failed.output, failed.output
    assert len(idp.polls()) == 2  # stopped at the answer, did not poll on
    assert not (config_home / "privet" / "config.toml").exists()


def test_a_token_the_gateway_refuses_is_not_stored(
    cli: Run, idp: Provider, waits: list[float], config_home: Path
) -> None:
    idp.audience = "another-api"
    failed = cli("login", "--url", "http://testserver", "--oidc")
    assert failed.exit_code == 1
    assert "audience is not accepted" in failed.output
    assert not (config_home / "privet" / "config.toml").exists()


def test_an_expired_token_is_refreshed_transparently(
    cli: Run, client: Any, idp: Provider, waits: list[float], config_home: Path
) -> None:
    idp.token_ttl = 2
    assert cli("login", "--url", "http://testserver", "--oidc").exit_code == 0
    first = _profile(config_home)
    time.sleep(3)
    old = client.get("/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert old.status_code == 401 and "expired" in old.json()["detail"]  # really expired

    idp.token_ttl = 300
    me = cli("whoami", "-o", "json")
    assert me.exit_code == 0, me.output
    assert json.loads(me.stdout)["name"] == "Alice Example"
    (refresh,) = idp.refreshes()
    assert refresh.form["refresh_token"] == first["refresh_token"]
    assert refresh.form["client_id"] == CLIENT_ID
    second = _profile(config_home)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated, and kept
    assert _epoch(second["expires_at"]) > time.time() + 200
    path = config_home / "privet" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert cli("whoami", "-o", "json").exit_code == 0
    assert len(idp.refreshes()) == 1  # the fresh token is used as it is


def test_a_refused_refresh_or_no_refresh_token_says_sign_in_again(
    cli: Run, idp: Provider, waits: list[float], config_home: Path
) -> None:
    idp.token_ttl = 10  # within the margin the CLI refreshes ahead of expiry
    assert cli("login", "--url", "http://testserver", "--oidc").exit_code == 0
    idp.refresh_tokens.clear()  # revoked at the provider
    refused = cli("whoami")
    assert refused.exit_code == 1, refused.output
    assert "invalid_grant" in refused.output
    assert "privet login --url http://testserver --profile default" in refused.output

    idp.issue_refresh_tokens, idp.token_ttl = False, 2
    assert cli("login", "--url", "http://testserver", "--oidc").exit_code == 0
    assert "refresh_token" not in _profile(config_home)
    assert cli("whoami").exit_code == 0  # without a refresh token it is used to the end
    time.sleep(2.5)
    expired = cli("whoami")
    assert expired.exit_code == 1
    assert "expired" in expired.output and "privet login" in expired.output


def test_the_provider_must_be_the_issuer_the_gateway_trusts(
    cli: Run, idp: Provider, waits: list[float], config_home: Path, monkeypatch: Any
) -> None:
    """A discovery document naming another issuer is refused (OpenID Discovery 4.3)."""
    original = idp.issuer
    idp.issuer = "https://impostor.example"  # the document now names another issuer
    failed = cli("login", "--url", "http://testserver", "--oidc")
    assert failed.exit_code == 1
    assert "impostor.example" in failed.output and original in failed.output
    assert [r.path for r in idp.requests] == ["/.well-known/openid-configuration"]
    assert not (config_home / "privet" / "config.toml").exists()
    assert httpx.get(f"{original}/jwks").status_code == 200  # the provider itself is fine
