"""Fixtures of the benchmarks: ``seeded_ledger``, a year of a bank's traffic at
``PRIVET_BENCH_EVENTS`` events on each of ``PRIVET_BENCH_BACKENDS``, cached on disk between
runs (tests/benchmarks/seeded.py), and ``seeded_copy``, a copy of it to write into."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.benchmarks.seeded import BACKENDS, SeededLedger, seeded


@pytest.fixture(scope="session", params=BACKENDS)
def seeded_ledger(request: pytest.FixtureRequest) -> SeededLedger:
    """The seeded database of one backend (read-only; ``writable_copy`` for writers)."""
    return seeded(str(request.param))


@pytest.fixture
def seeded_copy(seeded_ledger: SeededLedger, tmp_path: Path) -> Iterator[str]:
    """A writable copy of the seeded database (its URL), gone after the test."""
    url = seeded_ledger.writable_copy(tmp_path)
    yield url
    seeded_ledger.drop_copy(url)
