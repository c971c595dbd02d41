"""Fixtures of the benchmarks: ``seeded_ledger``, a year of a bank's traffic at
``PRIVET_BENCH_EVENTS`` events on each of ``PRIVET_BENCH_BACKENDS``, cached on disk between
runs (tests/benchmarks/seeded.py)."""

from __future__ import annotations

import pytest

from tests.benchmarks.seeded import BACKENDS, SeededLedger, seeded


@pytest.fixture(scope="session", params=BACKENDS)
def seeded_ledger(request: pytest.FixtureRequest) -> SeededLedger:
    """The seeded database of one backend (read-only; ``writable_copy`` for writers)."""
    return seeded(str(request.param))
