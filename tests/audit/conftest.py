"""Fixtures for the privet_audit tests: a signer, a small signed log, a bundle of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from privet_audit.bundle import write_bundle
from privet_audit.checkpoint import Signer

from .helpers import ORIGIN, Log, build_log


@pytest.fixture(scope="session")
def signer() -> Signer:
    return Signer.from_seed(ORIGIN, bytes(range(32)))


@pytest.fixture(scope="session")
def other_signer() -> Signer:
    return Signer.from_seed(ORIGIN, bytes(range(1, 33)))


@pytest.fixture(scope="session")
def log(signer: Signer) -> Log:
    return build_log(signer, 100, 10)


@pytest.fixture
def bundle_path(tmp_path: Path, log: Log) -> Path:
    path = tmp_path / "ledger.bundle"
    write_bundle(path, verifier_key=log.vkey, checkpoints=log.notes, entries=log.entries)
    return path
