"""Fixtures for policy tests: the shipped directory and disposable copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from privet.policy import default_policy_dir


@pytest.fixture(scope="session")
def shipped_dir() -> Path:
    return default_policy_dir()


@pytest.fixture
def policy_copy(tmp_path: Path, shipped_dir: Path) -> Path:
    """A copy of the shipped policies/ (with its tests) that a test may edit."""
    target = tmp_path / "policies"
    shutil.copytree(shipped_dir, target)
    return target
