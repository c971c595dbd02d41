"""deploy/Dockerfile and its build context, linted statically (and by hadolint when it is
installed: sh deploy/tools/install-validators.sh)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.deploy._support import (
    DEPLOY,
    REPO,
    Stage,
    check_cli_args,
    dockerignore_excludes,
    dockerignore_rules,
    parse_dockerfile,
    tool,
    unknown_settings,
)

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|cmake|make|cc|libc6-dev|python3?-dev|rustc|cargo)\b"
)
SECRET_NAME = re.compile(
    r"(PASSW|SECRET|TOKEN|_PIN\b|PIN$|API_KEY|PRIVATE|CREDENTIAL|DATABASE_URL)"
)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    _, stages = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
    return stages


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def test_multi_stage_with_a_slim_python_final(stages: list[Stage], final: Stage) -> None:
    assert len(stages) >= 2
    assert [s.name for s in stages] == ["builder", "final"]
    preamble, _ = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
    image = {i.value.split("=", 1)[0]: i.value.split("=", 1)[1] for i in preamble}
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image["PYTHON_IMAGE"])
    assert final.base == "${PYTHON_IMAGE}"
    copies = " ".join(i.value for i in final.all("COPY"))
    assert "--from=builder /opt/venv /opt/venv" in copies


def test_final_stage_runs_as_a_fixed_non_root_user(final: Stage) -> None:
    (user,) = final.all("USER")
    uid, _, gid = _resolve(user.value, final.args()).partition(":")
    assert uid.isdigit() and int(uid) >= 1000, "a fixed numeric uid (runAsNonRoot checks it)"
    assert gid.isdigit() and int(gid) >= 1000
    # USER comes after every RUN of the final stage
    last_run = max(i.line for i in final.all("RUN"))
    assert user.line > last_run


def test_no_build_tools_in_the_final_stage(stages: list[Stage], final: Stage) -> None:
    for ins in final.all("RUN"):
        assert not re.search(r"apt-get\s+install|apk\s+add|dnf\s+install|yum\s+install", ins.value)
        assert not BUILD_TOOLS.search(ins.value), ins.value
    # the builder is where they belong (keeps this check honest)
    assert any(BUILD_TOOLS.search(i.value) for i in stages[0].all("RUN"))


def test_variant_chooses_the_torch_index(stages: list[Stage]) -> None:
    builder = stages[0]
    args = builder.args()
    assert args["VARIANT"] == "cpu"
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TORCH_VERSION"])
    install = next(i.value for i in builder.all("RUN") if "torch==" in i.value)
    assert "cpu)" in install and "cuda)" in install
    assert 'index="${TORCH_INDEX_BASE}/cpu"' in install
    assert "--index-url" in install
    assert args["TORCH_INDEX_BASE"].startswith("https://download.pytorch.org/whl")
    project = next(i.value for i in builder.all("RUN") if '".[ray]"' in i.value)
    assert "-e " not in project, "a regular install: the image has no source tree"


def test_healthcheck_entrypoint_and_default_command(final: Stage) -> None:
    (health,) = final.all("HEALTHCHECK")
    assert "/healthz" in health.value and "CMD" in health.value
    (expose,) = final.all("EXPOSE")
    assert expose.value == "8000"
    (entrypoint,) = final.all("ENTRYPOINT")
    (cmd,) = final.all("CMD")
    argv = entrypoint.exec_form()
    assert argv is not None and argv[-1] == "privet"
    default = cmd.exec_form()
    assert default == ["serve", "--host", "0.0.0.0"]
    assert check_cli_args(default) == []


def test_environment(final: Stage, stages: list[Stage]) -> None:
    env = final.env()
    assert env["PRIVET_HOME"] == "/var/lib/privet"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert unknown_settings([k for k in env if k.startswith("PRIVET_")]) == []
    for stage in stages:
        for name in [*stage.env(), *stage.args()]:
            assert not SECRET_NAME.search(name), f"{name}: no secrets in ENV/ARG"


def test_policies_are_copied_where_privet_policy_dir_points(final: Stage) -> None:
    policy_dir = final.env()["PRIVET_POLICY_DIR"].rstrip("/")
    copies = [i.value.split() for i in final.all("COPY")]
    assert any(c[-2].rstrip("/") == "policies" and c[-1].rstrip("/") == policy_dir for c in copies)


def test_no_remote_add() -> None:
    _, stages = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
    for stage in stages:
        for ins in stage.all("ADD"):
            assert not re.search(r"\b(https?|git|ftp)://|git@", ins.value), ins.value


def test_copy_sources_are_in_the_build_context() -> None:
    """Everything COPY reads exists and survives Dockerfile.dockerignore; local state does
    not get into the context."""
    rules = dockerignore_rules(IGNORE)
    _, stages = parse_dockerfile(DOCKERFILE.read_text("utf-8"))
    for stage in stages:
        for ins in stage.all("COPY"):
            words = [w for w in ins.value.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in ins.value.split()):
                continue
            for src in words[:-1]:
                path = REPO / src
                assert path.exists(), src
                files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
                for file in files:
                    rel = file.relative_to(REPO).as_posix()
                    if "__pycache__" in rel or rel.endswith(".pyc"):
                        continue
                    assert not dockerignore_excludes(rules, rel), f"{rel} is ignored"
    for rel in (
        ".git/config",
        ".venv/bin/python",
        ".privet/secrets/kek/v1.key",
        "deploy/secrets/postgres_password",
        "tests/conftest.py",
        "platform/privet/__pycache__/config.cpython-311.pyc",
    ):
        assert dockerignore_excludes(rules, rel), f"{rel} would be sent to the build"


def test_entrypoint_script_is_executable() -> None:
    assert os.access(DEPLOY / "docker-entrypoint.sh", os.X_OK)


def test_hadolint() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (sh deploy/tools/install-validators.sh)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
