"""The image installs privet as a regular (non-editable) package, away from the source
checkout: every data file the code reads at run time must be declared as package data,
and nothing may be read relative to the checkout (policies come from PRIVET_POLICY_DIR)."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy._support import REPO

#: Documentation beside the code, not read at run time.
DOCS = ("*.md", "*.rst", "*.txt")
ROOTS = {"privet": REPO / "platform" / "privet", "privet_audit": REPO / "audit" / "privet_audit"}


def _package_data() -> dict[str, list[str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    return config["package-data"]


def _declared(root_name: str, root: Path, path: Path) -> bool:
    for key, patterns in _package_data().items():
        if key == "*":
            base = path.parent
        else:
            parts = key.split(".")
            if parts[0] != root_name:
                continue
            base = root.joinpath(*parts[1:])
        if base not in path.parents:
            continue
        rel = path.relative_to(base).as_posix()
        if any(fnmatch.fnmatch(rel, pattern) for pattern in patterns):
            return True
    return False


def _source_files() -> list[tuple[str, Path, Path]]:
    """(package, package root, file) for every file of the packages, caches aside."""
    out = []
    for root_name, root in ROOTS.items():
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                out.append((root_name, root, path))
    return out


def test_every_data_file_is_package_data() -> None:
    missing = [
        path.relative_to(REPO).as_posix()
        for root_name, root, path in _source_files()
        if path.suffix != ".py"
        and not any(fnmatch.fnmatch(path.name, doc) for doc in DOCS)
        and not _declared(root_name, root, path)
    ]
    assert missing == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


def _run_installed(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`privet <argv>` from what a wheel would hold (.py files and declared package data),
    copied away from the repository, with the policies elsewhere as in the image."""
    site = tmp_path / "site"
    if not site.exists():
        for root_name, root, path in _source_files():
            if path.suffix == ".py" or _declared(root_name, root, path):
                target = site / root_name / path.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
        shutil.copytree(REPO / "policies", tmp_path / "opt" / "privet" / "policies")
    env = {
        **os.environ,
        "PRIVET_HOME": str(tmp_path / "home"),
        "PRIVET_POLICY_DIR": str(tmp_path / "opt" / "privet" / "policies"),
        "PRIVET_KEY_PROVIDER": "local",
    }
    for key in ("PRIVET_DATABASE_URL", "PYTHONPATH"):
        env.pop(key, None)
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import privet, privet_audit; "
        "print('privet from', privet.__file__); "
        "from privet.cli import app; sys.argv[0] = 'privet'; app()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(site), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert f"privet from {site}" in result.stdout, result.stdout + result.stderr
    return result, site


@pytest.mark.slow
def test_installed_layout_runs_outside_the_checkout(tmp_path: Path) -> None:
    """`privet init` migrates a fresh database, loads the policies from PRIVET_POLICY_DIR
    and creates the keys, with no source checkout around."""
    result, _ = _run_installed(tmp_path, "init")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PRIVET_API_KEY=" in result.stdout


@pytest.mark.slow
def test_policy_cli_honours_privet_policy_dir_when_installed(tmp_path: Path) -> None:
    result, _ = _run_installed(tmp_path, "policy", "validate")
    assert result.returncode == 0, result.stdout + result.stderr
