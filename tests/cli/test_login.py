"""Sign in once: `privet login` stores a 0600 profile; `whoami` shows principal, roles and
key expiry; `--profile` and PRIVET_URL / PRIVET_API_KEY override the stored default."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.cli.conftest import Run


def test_login_stores_a_private_profile_and_whoami_reads_it(
    cli: Run, admin: Any, make_caller: Any, config_home: Path
) -> None:
    bad = cli("login", "--url", "http://testserver", "--api-key", "pvt_garbage")
    assert bad.exit_code == 1 and "expected pvt_<id>_<secret>" in bad.output
    assert not (config_home / "privet" / "config.toml").exists()  # nothing stored

    done = cli("login", "--url", "http://testserver", input=admin.key + "\n")  # prompted
    assert done.exit_code == 0, done.output
    assert admin.key not in done.output  # the hidden prompt does not echo it
    path = config_home / "privet" / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = tomllib.loads(path.read_text())
    assert stored["default"] == "default"
    assert stored["profiles"]["default"] == {"url": "http://testserver", "api_key": admin.key}

    me = json.loads(cli("whoami", "--output", "json").stdout)  # no PRIVET_API_KEY: profile
    assert me["principal_id"] == admin.principal_id
    assert me["roles"] == [{"role": "admin", "project_id": None}]
    assert me["credential"]["method"] == "api_key" and me["credential"]["expires_at"]
    as_yaml = yaml.safe_load(cli("whoami", "-o", "yaml").stdout)
    assert as_yaml == me

    steward = make_caller("data_steward", None, name="stella")
    cli("login", "--url", "http://testserver", "--profile", "steward", "--no-default",
        "--api-key", steward.key)  # fmt: skip
    by_flag = json.loads(cli("--profile", "steward", "whoami", "-o", "json").stdout)
    assert by_flag["name"] == "stella"
    by_env = json.loads(cli("whoami", "-o", "json", key=steward.key).stdout)
    assert by_env["principal_id"] == steward.principal_id  # PRIVET_API_KEY beats the default
    again = json.loads(cli("whoami", "-o", "json").stdout)
    assert again["principal_id"] == admin.principal_id  # --no-default kept the default
    missing = cli("--profile", "nope", "whoami")
    assert missing.exit_code == 2 and "privet login --profile nope" in missing.output

    assert cli("logout", "--profile", "steward").exit_code == 0
    assert "steward" not in tomllib.loads(path.read_text())["profiles"]


def test_whoami_shows_a_scoped_keys_project_roles_only(cli: Run, client: Any, admin: Any) -> None:
    project = client.post("/v1/projects", json={"name": "scoped"}, headers=admin.headers).json()
    app_key = client.post(
        "/v1/api-keys",
        json={"name": "scoped", "project_id": project["id"]},
        headers=admin.headers,
    ).json()
    me = json.loads(cli("whoami", "-o", "json", key=app_key["key"]).stdout)
    assert me["credential"]["project_id"] == project["id"]
    assert me["credential"]["name"] == "scoped"
    assert me["roles"] == [{"role": "admin", "project_id": project["id"]}]
    table = cli("whoami", "-o", "table", key=app_key["key"])
    assert "admin" in table.stdout and project["id"] in table.stdout


def test_oidc_login_against_a_server_without_oidc_says_what_to_use(
    cli: Run, client: Any, config_home: Path
) -> None:
    assert client.get("/v1/auth/config").json() == {"oidc": None}
    failed = cli("login", "--url", "http://testserver", "--oidc")
    assert failed.exit_code == 2, failed.output
    assert "accepts no OIDC" in failed.output and "--api-key" in failed.output
    assert not (config_home / "privet" / "config.toml").exists()
