"""deploy/compose.yaml, read as Compose would (YAML with merge keys), checked against the
real CLI and settings. No Docker engine needed."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._support import (
    DEPLOY,
    PRIVET_ENV_RE,
    REPO,
    check_cli_args,
    compose_schema,
    unknown_settings,
)

COMPOSE = DEPLOY / "compose.yaml"
PRIVET_IMAGE_SERVICES = ("migrate", "gateway", "worker", "ray-head")
#: Settings that carry secrets: only ever as *_FILE from a secret, never a literal.
SECRET_SETTINGS = ("PRIVET_DATABASE_URL", "PRIVET_PKCS11_PIN")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list), "use the exec (list) form for commands"
    return [str(c) for c in command]


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    assert isinstance(deps, dict), "depends_on must state a condition per service"
    return {name: spec["condition"] for name, spec in deps.items()}


def test_services_and_profiles(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "migrate", "db-grants", "gateway", "worker", "ray-head"}
    assert services["ray-head"]["profiles"] == ["ray"]
    for name, service in services.items():
        if name != "ray-head":
            assert "profiles" not in service, f"{name} must start without a profile"


def test_postgres_healthcheck_and_startup_order(services: dict[str, dict[str, Any]]) -> None:
    pg = services["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert "ports" not in pg, "PostgreSQL must not be published"
    assert _depends(services["migrate"]) == {"postgres": "service_healthy"}
    assert _depends(services["db-grants"]) == {"migrate": "service_completed_successfully"}
    for name in ("gateway", "worker"):
        deps = _depends(services[name])
        assert deps["postgres"] == "service_healthy", name
        assert deps["db-grants"] == "service_completed_successfully", name


def test_gateway_and_worker_commands_exist_in_the_cli(
    services: dict[str, dict[str, Any]],
) -> None:
    gateway, worker = _argv(services["gateway"]), _argv(services["worker"])
    assert gateway[0] == "serve" and "--no-worker" in gateway
    assert gateway[gateway.index("--host") + 1] == "0.0.0.0"
    assert worker[0] == "worker"
    assert _argv(services["migrate"]) == ["db", "upgrade"]
    for name in ("gateway", "worker", "migrate"):
        assert "entrypoint" not in services[name], f"{name} must keep the image's entrypoint"
        assert check_cli_args(_argv(services[name])) == [], name


def test_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    gateway_check = " ".join(services["gateway"]["healthcheck"]["test"])
    assert "/readyz" in gateway_check
    # the image's HEALTHCHECK probes HTTP; the worker and one-shot jobs have no server
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert "ray" in " ".join(services["ray-head"]["healthcheck"]["test"])


def test_every_privet_variable_is_a_real_setting(services: dict[str, dict[str, Any]]) -> None:
    used: set[str] = set()
    for service in services.values():
        used |= {k for k in _env(service) if k.startswith("PRIVET_")}
    used |= set(PRIVET_ENV_RE.findall(COMPOSE.read_text("utf-8")))
    assert used, "compose sets no PRIVET_* variable?"
    assert unknown_settings(used) == []


def test_secrets_come_from_secret_files(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = compose["secrets"]
    generator = (DEPLOY / "compose-secrets.sh").read_text("utf-8")
    generated = set(re.findall(r"^put (\w+)", generator, re.MULTILINE))
    for name, spec in declared.items():
        assert spec["file"] == f"./secrets/{name}", name
        assert name in generated, f"compose-secrets.sh does not create {name}"
    assert (DEPLOY / ".gitignore").read_text("utf-8").splitlines().count("/secrets/") == 1
    for sname, service in services.items():
        for ref in service.get("secrets", []):
            assert ref in declared, f"{sname} uses undeclared secret {ref}"
        env = _env(service)
        for key in SECRET_SETTINGS:
            assert key not in env, f"{sname}: {key} as a literal; use {key}_FILE"
        for key, value in env.items():
            if key.endswith("_FILE") and key.startswith("PRIVET_"):
                secret = Path(str(value)).name
                assert str(value) == f"/run/secrets/{secret}", key
                assert secret in service.get("secrets", []), f"{sname}: {key} not mounted"
        assert "POSTGRES_PASSWORD" not in env, "the postgres password comes from a file"


def test_privet_services_build_the_image_and_share_privet_home(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in PRIVET_IMAGE_SERVICES:
        build = services[name]["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO
        assert (context / build["dockerfile"]).is_file()
        assert "VARIANT" in build["args"]
    for name in ("gateway", "worker"):
        service = services[name]
        assert "privet-blobs:/var/lib/privet/blobs" in service["volumes"]
        assert _env(service)["PRIVET_HOME"] == "/var/lib/privet"
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert service["init"] is True
    assert "privet-home:/var/lib/privet" in services["gateway"]["volumes"]
    assert "privet-kek:/var/lib/privet/secrets/kek" in services["gateway"]["volumes"]


def test_the_worker_mounts_no_secret_beyond_the_master_key(
    services: dict[str, dict[str, Any]],
) -> None:
    """Least secrets per process: the worker sees the blobs and the master key (read-only),
    never privet-home with the API-key pepper, the signing key and the HMAC secrets."""
    worker = services["worker"]
    assert sorted(worker["volumes"]) == [
        "privet-blobs:/var/lib/privet/blobs",
        "privet-kek:/var/lib/privet/secrets/kek:ro",
    ]
    assert "/var/lib/privet" in worker["tmpfs"]


def test_networks_keep_backends_private(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    assert compose["networks"]["backend"]["internal"] is True
    for name, service in services.items():
        if name == "gateway":
            assert service["networks"] == ["backend", "frontend"]
            (port,) = service["ports"]
            assert port.startswith("127.0.0.1:") and port.endswith(":8000")
        else:
            assert service["networks"] == ["backend"], name
            assert "ports" not in service, f"{name} must not publish ports"


def test_ray_uses_token_auth_and_no_dashboard(services: dict[str, dict[str, Any]]) -> None:
    head = services["ray-head"]
    assert head["entrypoint"] == ["ray"]
    command = [str(c) for c in head["command"]]
    assert command[:2] == ["start", "--head"] and "--include-dashboard=false" in command
    for name in ("ray-head", "worker"):
        env = _env(services[name])
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert "ray_auth_token" in services[name]["secrets"]
    # the worker only goes to Ray when the operator passes an address
    assert _env(services["worker"])["PRIVET_RAY_ADDRESS"] is None


def test_ray_commands_exist_in_the_ray_cli(services: dict[str, dict[str, Any]]) -> None:
    scripts = pytest.importorskip("ray.scripts.scripts", reason="the ray extra is not installed")
    head = services["ray-head"]
    start = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(c)) for c in head["command"]]
    assert check_cli_args(start, root=scripts.cli, prog="ray") == []
    test = head["healthcheck"]["test"]
    assert test[:2] == ["CMD", "ray"]
    assert check_cli_args(test[2:], root=scripts.cli, prog="ray") == []


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} is missing"


def test_compose_schema(compose: dict[str, Any]) -> None:
    """Validated against the Compose specification's JSON schema (its 2021 revision, which
    predates the top-level `name`): catches misspelt or misplaced keys."""
    schema_path = compose_schema()
    if schema_path is None:
        pytest.skip("compose-spec.json is not installed (sh deploy/tools/install-validators.sh)")
    import jsonschema

    schema = json.loads(schema_path.read_text("utf-8"))
    document = copy.deepcopy(compose)
    assert isinstance(document.pop("name"), str)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(document)
    ]
    assert errors == []
