"""The insider state machine's long profile, on demand:

    .venv/bin/python -m pytest tests/benchmarks/test_insider_long.py -s

Once per invariant (so each gets its own shrunk counterexample: Hypothesis stops looking
shortly after the first bug it finds) and once with all four: PRIVET_INSIDER_LONG_EXAMPLES
(default 100) random sequences of up to PRIVET_INSIDER_LONG_STEPS (default 40) steps, at
most two trainings each, on SQLite. Prints how many sequences, steps and trainings ran; a
failure prints the shortest sequence of requests that broke the invariant."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.jobs.conftest import tiny_model
from tests.security.insider import INVARIANTS, Env, run

__all__ = ["tiny_model"]

EXAMPLES = int(os.environ.get("PRIVET_INSIDER_LONG_EXAMPLES", "100"))
STEPS = int(os.environ.get("PRIVET_INSIDER_LONG_STEPS", "40"))


@pytest.mark.insider
@pytest.mark.parametrize("checked", [*INVARIANTS, "all"])
def test_insider_long(sqlite_template: Path, tiny_model: Path, checked: str) -> None:
    env = Env(
        sqlite_template=sqlite_template,
        tiny_catalog=tiny_model,
        max_trainings=2,
        checked=frozenset(INVARIANTS if checked == "all" else (checked,)),
    )
    stats = run(env, profile="insider-long", examples=EXAMPLES, steps=STEPS)
    print(f"[{checked}] {stats.summary()}")
    assert stats.steps > 0
